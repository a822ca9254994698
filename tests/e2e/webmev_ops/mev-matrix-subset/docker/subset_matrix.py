"""Keep or remove samples (columns) and features (rows) of a matrix, standard library only
(stand-in for WebMEV's subset_matrix.py).

    subset_matrix.py -i <path>:::<RESOURCE_TYPE> [-s a,b] [-f x,y] [--keepcols] [--keeprows]

The input comes with its WebMEV resource type (``path:::TYPE``); the result keeps that type:
outputs.json says {"reduced_matrix": {"path": ..., "resource_type": TYPE}}. Both are written
next to the input, as WebMEV's operations do.
"""

import argparse
import csv
import json
import os
import sys

DELIMITER = ":::"


def names(text):
    return [x.strip() for x in text.split(",") if x.strip()] if text else []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-i", "--input", dest="input_matrix", required=True)
    parser.add_argument("-s", "--samples", dest="cols", default=None)
    parser.add_argument("-f", "--features", dest="rows", default=None)
    parser.add_argument("--keepcols", action="store_true")
    parser.add_argument("--keeprows", action="store_true")
    args = parser.parse_args()

    path, sep, resource_type = args.input_matrix.rpartition(DELIMITER)
    if not sep or not path or not resource_type:
        sys.exit(f"Expected <path>{DELIMITER}<resource type>, got {args.input_matrix!r}")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r]
    header, body = rows[0], rows[1:]

    cols = names(args.cols)
    if cols:
        missing = [c for c in cols if c not in header[1:]]
        if missing:
            sys.exit("Samples not in the matrix: " + ", ".join(missing))
        chosen = set(cols)
        kept = [i for i, h in enumerate(header) if i == 0 or (h in chosen) == args.keepcols]
        header = [header[i] for i in kept]
        body = [[r[i] for i in kept] for r in body]
    features = names(args.rows)
    if features:
        present = {r[0] for r in body}
        missing = [f for f in features if f not in present]
        if missing:
            sys.exit("Features not in the matrix: " + ", ".join(missing))
        chosen = set(features)
        body = [r for r in body if (r[0] in chosen) == args.keeprows]
    if len(header) < 2 or not body:
        sys.exit("Nothing is left of the matrix.")

    working_dir = os.path.dirname(path)
    out = os.path.join(working_dir, os.path.basename(path) + ".subset.tsv")
    with open(out, "w", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows([header, *body])
    outputs = {"reduced_matrix": {"path": out, "resource_type": resource_type}}
    with open(os.path.join(working_dir, "outputs.json"), "w") as fh:
        json.dump(outputs, fh)


if __name__ == "__main__":
    main()
