#!/bin/sh
# make_table.sh ROWS COLS SEED PREFIX: a tab-separated table of whole numbers, a header of
# sample names (s1..sCOLS) and rows named PREFIX-g1..PREFIX-gROWS; the same arguments always
# give the same table.
set -eu
awk -v rows="$1" -v cols="$2" -v seed="$3" -v prefix="$4" 'BEGIN {
    line = "gene"
    for (c = 1; c <= cols; c++) line = line "\ts" c
    print line
    for (r = 1; r <= rows; r++) {
        line = prefix "-g" r
        for (c = 1; c <= cols; c++) line = line "\t" ((seed * 31 + r * 7 + c * 3) % 17)
        print line
    }
}'
