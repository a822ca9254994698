#!/bin/sh
# table-summary: count the rows and columns of a table.
#
#   summarize.sh TABLE
#
# TABLE is TSV or CSV (a tab in the header line means TSV) whose first line is the header.
# Writes summary.json and then outputs.json into the working directory:
#   {"summary": "summary.json", "rows": N}
# Empty lines are not rows; CRLF line ends and a UTF-8 byte-order mark are accepted. CSV fields
# are split at every comma (quoted fields holding commas are not supported).
set -eu

if [ "$#" -ne 1 ]; then
    echo "usage: summarize.sh TABLE" >&2
    exit 2
fi
if [ ! -r "$1" ]; then
    echo "table-summary: can't read the table $1" >&2
    exit 2
fi

awk '
function json_string(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/"/, "\\\"", s)
    gsub(/\t/, "\\t", s)
    return "\"" s "\""
}
function unquote(s) {
    if (s ~ /^".*"$/) { s = substr(s, 2, length(s) - 2); gsub(/""/, "\"", s) }
    return s
}
{ sub(/\r$/, "") }
NR == 1 {
    sub(/^\357\273\277/, "")
    if (index($0, "\t") > 0) { FS = "\t"; delimiter = "tab" } else { FS = ","; delimiter = "comma" }
    $0 = $0
    columns = NF
    names = ""
    for (i = 1; i <= NF; i++) names = names (i > 1 ? ", " : "") json_string(unquote($i))
    next
}
$0 == "" { next }
{
    rows++
    if (NF != columns) ragged++
}
END {
    if (NR == 0 || columns == 0) {
        print "table-summary: the table is empty (it needs a header line)" > "/dev/stderr"
        exit 3
    }
    printf "{\"rows\": %d, \"columns\": %d, \"column_names\": [%s], \"delimiter\": \"%s\", \"ragged_rows\": %d}\n", rows, columns, names, delimiter, ragged > "summary.json"
    close("summary.json")
    printf "{\"summary\": \"summary.json\", \"rows\": %d}\n", rows > "outputs.json"
    close("outputs.json")
    printf "%d rows, %d columns (%s-separated)\n", rows, columns, delimiter
}
' "$1"
