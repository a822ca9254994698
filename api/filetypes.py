"""File types: guessing one from a name, and checking that content really is of that type."""

from __future__ import annotations

import codecs
import csv
import json
import mimetypes
import os
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings

from .models import FileType

# WebMEV's resource types: a File may record one (``File.resource_type``); WebMEV operations
# name the ones their inputs take and their outputs are.
# The 19 codes WebMEV knows → the Ferry file types a file of that type can be.
RESOURCE_TYPE_FILE_TYPES: dict[str, tuple[str, ...]] = {
    "FQ": ("text", "binary"),  # FASTQ (often gzipped)
    "FA": ("text", "binary"),  # FASTA
    "ALN": ("text", "binary"),  # SAM/BAM
    "BAI": ("binary",),  # BAM index
    "FT": ("table",),  # feature table
    "MTX": ("table",),  # numeric table
    "I_MTX": ("table",),  # integer table
    "EXP_MTX": ("table",),  # expression matrix
    "RNASEQ_COUNT_MTX": ("table",),  # RNA-seq count matrix
    "NS": ("table",),  # network descriptor
    "ANN": ("table",),  # annotation table
    "BED3": ("table",),
    "BED6": ("table",),
    "NRWPK": ("table",),  # narrowPeak (BED6+4)
    "WIG": ("text",),
    "BIGWIG": ("binary",),
    "BEDGRAPH": ("table",),
    "JSON": ("json",),
    "*": ("table", "json", "text", "binary"),  # a general file
}
RESOURCE_TYPES = tuple(code for code in RESOURCE_TYPE_FILE_TYPES if code != "*")

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

_TABLE_SUFFIXES = {".tsv": "\t", ".tab": "\t", ".csv": ","}
_TEXT_SUFFIXES = {
    ".txt",
    ".log",
    ".md",
    ".fa",
    ".fasta",
    ".fastq",
    ".fq",
    ".gtf",
    ".gff",
    ".bed",
    ".vcf",
    ".sam",
    ".wdl",
}
_READ_CHUNK = 1024 * 1024


def guess_file_type(name: str) -> FileType:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        return FileType.TABLE
    if suffix == ".json":
        return FileType.JSON
    if suffix in _TEXT_SUFFIXES:
        return FileType.TEXT
    return FileType.BINARY


def content_type_for(name: str, file_type: str) -> str:
    if file_type == FileType.JSON:
        return "application/json"
    if file_type == FileType.TABLE:
        suffix = PurePosixPath(name).suffix.lower()
        return (
            "text/csv; charset=utf-8"
            if suffix == ".csv"
            else "text/tab-separated-values; charset=utf-8"
        )
    if file_type == FileType.TEXT:
        return "text/plain; charset=utf-8"
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if guessed and not encoding:
        return guessed
    return "application/octet-stream"


def check_content(path: str, file_type: str, name: str) -> str:
    """Return "" when the file at ``path`` is a valid ``file_type``, else the reason it is not."""
    if file_type == FileType.BINARY:
        return ""
    if file_type == FileType.TEXT:
        return _check_text(path)
    if file_type == FileType.JSON:
        return _check_json(path)
    if file_type == FileType.TABLE:
        return _check_table(path, name)
    return f"unknown file type {file_type!r}"


def _check_text(path: str) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            nul = chunk.find(b"\0")
            if nul >= 0:
                return f"not plain text: a NUL byte at byte offset {offset + nul}"
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text: invalid byte at byte offset {offset + exc.start}"
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "not UTF-8 text: the file ends inside a multi-byte character"
    return ""


def _check_json(path: str) -> str:
    size = os.path.getsize(path)
    if size > settings.FERRY_JSON_PARSE_MAX_BYTES:
        # Too large to parse in bounded memory: check the encoding and the outer framing only.
        reason = _check_text(path)
        if reason:
            return reason
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip()
            fh.seek(max(0, size - 4096))
            tail = fh.read().rstrip()
        pairs = {b"{": b"}", b"[": b"]"}
        if head[:1] not in pairs or not tail.endswith(pairs[head[:1]]):
            return (
                "not a JSON document: it must start with { or [ and end with the matching bracket"
            )
        return ""
    try:
        with open(path, encoding="utf-8") as fh:
            json.load(fh)
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: invalid byte at byte offset {exc.start}"
    except json.JSONDecodeError as exc:
        return f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
    return ""


def _delimiter(path: str, name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        return _TABLE_SUFFIXES[suffix]
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    return "\t" if b"\t" in first or b"," not in first else ","


def _header_problem(header: list[str] | None, kind: str) -> str:
    """Why a table's first line is not a header of unique, non-empty column names ("" if it is).
    An empty first cell is allowed: that column holds the row names."""
    if not header or all(not cell.strip() for cell in header):
        return "not a table: the first line must be a header naming the columns"
    named = (
        [c.strip() for c in header[1:]] if not header[0].strip() else [c.strip() for c in header]
    )
    if any(not c for c in named):
        return f"not a table: the header (line 1) has an empty column name ({kind}-separated)"
    duplicates = sorted({c for c in named if named.count(c) > 1})
    if duplicates:
        return f"not a table: the header repeats column names: {', '.join(duplicates)}"
    return ""


def _rows_problem(reader: CsvReader, width: int, kind: str) -> str:
    """Why the rows after a ``width``-column header are not a table ("" if they are): every row
    as wide as the first one, which is the header's width or one more (row names)."""
    row_width: int | None = None
    for row in reader:
        if not row:
            continue
        if row_width is None:
            # A header one short of the rows means the first column holds row names.
            if len(row) not in (width, width + 1):
                return (
                    f"not a table: line {reader.line_num} has {len(row)} fields but the "
                    f"header has {width} ({kind}-separated)"
                )
            row_width = len(row)
        elif len(row) != row_width:
            return (
                f"not a table: line {reader.line_num} has {len(row)} fields, "
                f"expected {row_width} ({kind}-separated)"
            )
    return ""


def _check_table(path: str, name: str) -> str:
    reason = _check_text(path)
    if reason:
        return reason
    delimiter = _delimiter(path, name)
    kind = "tab" if delimiter == "\t" else "comma"
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            return _header_problem(header, kind) or _rows_problem(reader, len(header or []), kind)
        except csv.Error as exc:
            return f"not a table: line {reader.line_num}: {exc}"
