"""A 2-D PCA of a matrix's samples, standard library only (stand-in for WebMEV's run_pca.py).

    run_pca.py -i <matrix.tsv> [-s <sample,sample,...>]

The matrix is tab-separated: a header of sample names, then one row per feature (its name
first). Writes pca_output.tsv (one row per sample: pc1, pc2) and outputs.json next to the
matrix, as WebMEV's operations do: their execution dir is the directory of their input.
"""

import argparse
import csv
import json
import math
import os
import sys


def read_matrix(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    samples = rows[0][1:]
    values = [[float(x) for x in row[1:]] for row in rows[1:] if row]
    return samples, values


def top_eigen(gram, start, skip=()):
    """The largest eigenvalue/vector of a symmetric matrix, orthogonal to ``skip``."""
    n = len(gram)
    vec = list(start)
    value = 0.0
    for _ in range(500):
        for other in skip:
            dot = sum(a * b for a, b in zip(vec, other, strict=True))
            vec = [a - dot * b for a, b in zip(vec, other, strict=True)]
        nxt = [sum(gram[i][j] * vec[j] for j in range(n)) for i in range(n)]
        norm = math.sqrt(sum(x * x for x in nxt))
        if norm == 0.0:
            return 0.0, vec
        nxt = [x / norm for x in nxt]
        if max(abs(a - b) for a, b in zip(nxt, vec, strict=True)) < 1e-12:
            vec = nxt
            value = norm
            break
        vec, value = nxt, norm
    return value, vec


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-i", "--input", dest="input_matrix", required=True)
    parser.add_argument("-s", "--samples", dest="samples", default=None)
    args = parser.parse_args()

    working_dir = os.path.dirname(args.input_matrix)
    names, matrix = read_matrix(args.input_matrix)
    if args.samples:
        wanted = [s.strip() for s in args.samples.split(",") if s.strip()]
        missing = [s for s in wanted if s not in names]
        if missing:
            sys.exit("Samples not in the matrix: " + ", ".join(missing))
        columns = [names.index(s) for s in wanted]
        names = wanted
        matrix = [[row[c] for c in columns] for row in matrix]
    if len(names) < 3:
        sys.exit("A PCA needs at least 3 samples.")

    # Samples are the points; center every feature, then use the samples' Gram matrix.
    centered = []
    for row in matrix:
        mean = sum(row) / len(row)
        centered.append([x - mean for x in row])
    n = len(names)
    gram = [[sum(r[i] * r[j] for r in centered) for j in range(n)] for i in range(n)]
    total = sum(gram[i][i] for i in range(n))
    if total == 0.0:
        sys.exit("The matrix has no variance.")
    start = [1.0 + 0.1 * i for i in range(n)]
    l1, v1 = top_eigen(gram, start)
    l2, v2 = top_eigen(gram, start, skip=(v1,))

    out = os.path.join(working_dir, "pca_output.tsv")
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["sample", "pc1", "pc2"])
        for i, name in enumerate(names):
            writer.writerow([name, v1[i] * math.sqrt(l1), v2[i] * math.sqrt(l2)])
    outputs = {
        "pca_coordinates": out,
        "pc1_explained_variance": l1 / total,
        "pc2_explained_variance": l2 / total,
    }
    with open(os.path.join(working_dir, "outputs.json"), "w") as fh:
        json.dump(outputs, fh)


if __name__ == "__main__":
    main()
