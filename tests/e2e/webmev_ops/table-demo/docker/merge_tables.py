"""merge_tables.py TOP BOTTOM SCALE OUT: TOP's rows then BOTTOM's (same header), each value kept
(SCALE raw) or as log2(1 + value) rounded to 4 places (SCALE log2)."""

import math
import sys


def main() -> int:
    top, bottom, scale, out = sys.argv[1:5]
    if scale not in ("raw", "log2"):
        print(f"unknown scale {scale!r}", file=sys.stderr)
        return 2
    with open(top, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    with open(bottom, encoding="utf-8") as fh:
        other = fh.read().splitlines()
    if lines[0] != other[0]:
        print("the tables' headers differ", file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(lines[0] + "\n")
        for line in lines[1:] + other[1:]:
            name, *values = line.split("\t")
            if scale == "log2":
                values = [f"{math.log2(1 + float(v)):.4f}" for v in values]
            fh.write("\t".join([name, *values]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
