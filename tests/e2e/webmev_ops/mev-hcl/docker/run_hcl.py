"""Stand-in for WebMEV's HCL script (standard library only): agglomerative clustering of the
samples (columns) and/or the genes (rows) of a tab-separated matrix, each tree written as JSON
``{"name": ..., "children": [...], "height": ...}`` with the leaves named by their labels.

    run_hcl.py -i matrix.tsv -d euclidean -l ward -c observations -o obs.json -f feat.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

METRICS = ("euclidean", "cityblock", "correlation", "cosine")
LINKAGES = ("ward", "complete", "average", "single")


def read_matrix(path: str) -> tuple[list[str], list[str], list[list[float]]]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows, values = [], []
        for line in fh:
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            rows.append(parts[0])
            values.append([float(v) for v in parts[1:]])
    return header[1:], rows, values


def distance(a: list[float], b: list[float], metric: str) -> float:
    if metric == "euclidean":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    if metric == "cityblock":
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))
    if metric == "cosine":
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        return 1.0 - (sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    ca, cb = [x - mean_a for x in a], [y - mean_b for y in b]
    norm = math.sqrt(sum(x * x for x in ca)) * math.sqrt(sum(y * y for y in cb))
    return 1.0 - (sum(x * y for x, y in zip(ca, cb, strict=True)) / norm if norm else 0.0)


def cluster(
    labels: list[str], vectors: list[list[float]], metric: str, linkage: str
) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"name": label} for label in labels]
    members = [[i] for i in range(len(labels))]
    active = list(range(len(labels)))
    pair = {}
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            pair[(i, j)] = distance(vectors[i], vectors[j], metric)

    def between(a: list[int], b: list[int]) -> float:
        found = [pair[(min(i, j), max(i, j))] for i in a for j in b]
        if linkage == "single":
            return min(found)
        if linkage == "complete":
            return max(found)
        if linkage == "average":
            return sum(found) / len(found)
        # ward (on the pairwise distances): the increase in within-cluster spread
        return math.sqrt(2 * len(a) * len(b) / (len(a) + len(b))) * (sum(found) / len(found))

    while len(active) > 1:
        best = None
        for x in range(len(active)):
            for y in range(x + 1, len(active)):
                d = between(members[active[x]], members[active[y]])
                if best is None or d < best[0]:
                    best = (d, active[x], active[y])
        assert best is not None
        height, a, b = best
        nodes.append({"children": [nodes[a], nodes[b]], "height": round(height, 6)})
        members.append(members[a] + members[b])
        active = [n for n in active if n not in (a, b)] + [len(nodes) - 1]
    return nodes[active[0]] if active else {}


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("-i", "-d", "-l", "-c", "-o", "-f"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    if args.d not in METRICS:
        print(f"distance {args.d!r} is not implemented in this stand-in", file=sys.stderr)
        return 2
    if args.l not in LINKAGES or args.c not in ("both", "observations", "features"):
        print("unknown linkage or dimension", file=sys.stderr)
        return 2
    samples, genes, values = read_matrix(args.i)
    if args.c in ("both", "observations"):
        columns = [[row[k] for row in values] for k in range(len(samples))]
        with open(args.o, "w", encoding="utf-8") as fh:
            json.dump(cluster(samples, columns, args.d, args.l), fh)
    if args.c in ("both", "features"):
        with open(args.f, "w", encoding="utf-8") as fh:
            json.dump(cluster(genes, values, args.d, args.l), fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
