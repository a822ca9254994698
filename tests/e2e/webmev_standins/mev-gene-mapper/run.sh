#!/bin/sh
# run.sh <path>:::<RESOURCE_TYPE> <Human|Mouse> <initial id type> <target id type>
case "$2" in
    Human) mappings=/opt/resources/human_mappings.tsv ;;
    *) echo "Only Human is in this stand-in's mapping table." >&2; exit 1 ;;
esac
exec python3 /usr/local/bin/map_ids.py "$1" "$mappings" "$3" "$4"
