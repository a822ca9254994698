"""Request body parsers: bounded JSON, and multipart/raw bodies for uploads."""

from __future__ import annotations

import html
import json
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

from .exceptions import ApplicationError, body_too_large
from .storage.uploads import CountingReader, incomplete_body

# JSON bodies may nest objects and arrays at most this deep (the outermost one counts as 1).
# Deeper documents are refused with 400 before they are parsed: Python's parser and everything
# that walks the result afterwards recurse once per level.
MAX_JSON_DEPTH = 64

# A string token, also when it runs to the end of the text unterminated: every quote that starts
# one is consumed with it, so stripping strings takes one pass (no rescans from inner quotes).
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_too_deep() -> ApplicationError:
    message = f"The JSON body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels."
    return ApplicationError(message, code="too_deep", details={"body": [message]})


def json_nesting_depth(text: str) -> int:
    """How deep a JSON text nests objects and arrays (brackets inside strings don't count).
    Linear in the text's length, whatever it holds."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


class BoundedJSONParser(parsers.JSONParser):
    """JSON, refusing bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (413) and documents nested deeper
    than MAX_JSON_DEPTH (400). DRF's own parser reads the whole stream with neither bound."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise body_too_large(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if json_nesting_depth(text) > MAX_JSON_DEPTH:
            raise json_too_deep()
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


class _NamedFilesMultiPartParser(DjangoMultiPartParser):
    """Django's multipart parser keeps only the last path segment of a part's file name and
    drops what it can't print; Ferry refuses such a name instead, as the raw upload does."""

    def sanitize_file_name(self, file_name: str) -> str | None:
        from .services import clean_file_name

        clean_file_name(html.unescape(file_name), field="file")
        return super().sanitize_file_name(file_name)


class CompleteMultiPartParser(parsers.MultiPartParser):
    """Multipart, refusing a body that ended before its Content-Length (a client that hung up
    mid-upload): Django's parser would otherwise take the truncated part as a whole file."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        counted = CountingReader(stream)
        request = (parser_context or {})["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data, files = _NamedFilesMultiPartParser(
                meta,
                counted,  # type: ignore[arg-type]
                request.upload_handlers,
                encoding,
            ).parse()
        except MultiPartParserError as exc:
            raise exceptions.ParseError(f"Multipart form parse error - {exc}") from None
        result = parsers.DataAndFiles(data, files)
        meta = request.META
        announced = int(meta.get("CONTENT_LENGTH") or 0)
        if counted.count < announced:
            for upload in result.files.values():
                upload.close()  # type: ignore[union-attr]
            raise incomplete_body(counted.count, announced)
        return result


class RawBodyParser(parsers.BaseParser):
    """Declares that the streamed upload takes any body; the view reads it itself."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raise ApplicationError("The raw upload body is read by the view, not parsed.")
