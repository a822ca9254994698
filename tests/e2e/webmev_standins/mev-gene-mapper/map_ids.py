"""Rename the rows of a table from one gene identifier type to another, standard library only
(stand-in for mev-gene-mapper's R script).

    map_ids.py <path>:::<RESOURCE_TYPE> <mappings.tsv> <Symbol|RefSeq|Ensembl> <Symbol|RefSeq|Ensembl>

Rows without a mapping are dropped. Writes <TARGET>_remapped_results.tsv (same resource type as
the input), the mapping used (a feature table), and outputs.json next to the input.
"""

import csv
import json
import os
import sys


def main():
    typed, mappings, initial, target = sys.argv[1:5]
    path, resource_type = typed.split(":::")
    initial, target = initial.upper(), target.upper()
    if initial == target:
        sys.exit("The initial and target gene identifiers are the same: nothing to map.")
    with open(mappings, newline="") as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    to_target = {row[initial]: row[target] for row in table if row[initial] and row[target]}
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    header, body = rows[0], [row for row in rows[1:] if row]
    kept = [(to_target[row[0]], row) for row in body if row[0] in to_target]
    if not kept:
        sys.exit("No identifier of the table is in the mapping: wrong identifier type or organism?")
    where = os.path.dirname(path)
    remapped = os.path.join(where, f"{target}_remapped_results.tsv")
    with open(remapped, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([new, *row[1:]] for new, row in kept)
    used = os.path.join(where, "gene_mapping.tsv")
    with open(used, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([target, initial])
        writer.writerows([new, row[0]] for new, row in kept)
    outputs = {"remapped_file": {"path": remapped, "resource_type": resource_type}, "mapping": used}
    with open(os.path.join(where, "outputs.json"), "w") as fh:
        json.dump(outputs, fh)


if __name__ == "__main__":
    main()
