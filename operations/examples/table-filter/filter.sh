#!/bin/sh
# table-filter: keep the rows of a table whose value in a column is at least a minimum.
#
#   filter.sh TABLE COLUMN MIN
#
# TABLE is TSV or CSV (a tab in the header line means TSV) whose first line is the header; the
# header is kept. Rows whose COLUMN holds no number are dropped (and counted on stdout).
# Writes filtered.tsv or filtered.csv (same format as the input) and then outputs.json into the
# working directory: {"filtered": "filtered.tsv", "kept": N}
# CSV fields are split at every comma (quoted fields holding commas are not supported).
set -eu

if [ "$#" -ne 3 ]; then
    echo "usage: filter.sh TABLE COLUMN MIN" >&2
    exit 2
fi
if [ ! -r "$1" ]; then
    echo "table-filter: can't read the table $1" >&2
    exit 2
fi

# Values go through the environment: awk -v would interpret backslashes in them.
FILTER_COLUMN=$2 FILTER_MIN=$3 awk '
function unquote(s) {
    if (s ~ /^".*"$/) { s = substr(s, 2, length(s) - 2); gsub(/""/, "\"", s) }
    return s
}
function is_number(s) {
    return s ~ /^[ ]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[ ]*$/
}
function fail(code, message) {
    print "table-filter: " message > "/dev/stderr"
    failed = code
    exit code
}
BEGIN {
    column = ENVIRON["FILTER_COLUMN"]
    min = ENVIRON["FILTER_MIN"]
    if (!is_number(min)) fail(2, "the minimum \"" min "\" is not a number")
    min = min + 0
}
{ sub(/\r$/, "") }
NR == 1 {
    sub(/^\357\273\277/, "")
    if (index($0, "\t") > 0) { FS = "\t"; out = "filtered.tsv" } else { FS = ","; out = "filtered.csv" }
    header = $0
    $0 = $0
    for (i = 1; i <= NF; i++) {
        names = names (i > 1 ? ", " : "") unquote($i)
        if (unquote($i) == column && !target) target = i
    }
    if (!target) fail(2, "no column named \"" column "\"; the columns are: " names)
    print header > out
    next
}
$0 == "" { next }
{
    value = unquote($target)
    if (!is_number(value)) { skipped++; next }
    if (value + 0 >= min) { print > out; kept++ } else dropped++
}
END {
    if (failed) exit failed
    if (NR == 0) {
        print "table-filter: the table is empty (it needs a header line)" > "/dev/stderr"
        exit 3
    }
    close(out)
    printf "{\"filtered\": \"%s\", \"kept\": %d}\n", out, kept > "outputs.json"
    close("outputs.json")
    printf "kept %d rows, dropped %d below %s, dropped %d without a number in %s\n", kept, dropped, ENVIRON["FILTER_MIN"], skipped, column
}
' "$1"
