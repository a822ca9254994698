"""Streaming a stored file: Content-Type, a safe Content-Disposition, ETag and Range (206/416)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header

from . import storage
from .exception_handlers import error_body
from .models import File

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1024 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """``(start, end)`` inclusive for one satisfiable range; ``None`` to ignore the header (absent,
    malformed or several ranges: the whole file is sent); ``False`` when it can't be satisfied."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return False
    return start, min(end, size - 1)


def _iter_range(fh: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        fh.close()


def _etag(file: File) -> str:
    token = file.sha256 or file.md5 or file.crc32c or f"{file.pk}-{file.size}"
    return f'"{token}"'


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def file_download_response(request: HttpRequest, file: File) -> HttpResponseBase:
    etag = _etag(file)
    common = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition_header(True, file.name) or "attachment",
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, etag):
        response: HttpResponseBase = HttpResponse(status=304)
        response["ETag"] = etag
        return response

    wanted = None
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and (not if_range or if_range.strip() == etag):
        wanted = parse_range(range_header, file.size)

    if wanted is False:
        response = HttpResponse(
            status=416,
            content_type="application/json",
            content=json.dumps(
                error_body(
                    "range_not_satisfiable",
                    f"The file has {file.size} bytes.",
                    {"Range": [f"Must start below {file.size}."]},
                )
            ),
        )
        response["Content-Range"] = f"bytes */{file.size}"
        return response

    if not storage.is_local(file.storage_uri):
        # A bucket object: stream it through (with ?redirect=1 the client gets a signed URL).
        first, last = wanted if isinstance(wanted, tuple) else (None, None)
        chunks = storage.iter_object(file.storage_uri, first, last)
        if isinstance(wanted, tuple):
            response = StreamingHttpResponse(chunks, status=206, content_type=file.content_type)
            response["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{file.size}"
            response["Content-Length"] = str(wanted[1] - wanted[0] + 1)
        else:
            response = StreamingHttpResponse(chunks, content_type=file.content_type)
            response["Content-Length"] = str(file.size)
        for key, value in common.items():
            response[key] = value
        return response

    fh = storage.open_object(file.storage_uri)
    if isinstance(wanted, tuple):
        start, end = wanted
        length = end - start + 1
        response = StreamingHttpResponse(
            _iter_range(fh, start, length), status=206, content_type=file.content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{file.size}"
        response["Content-Length"] = str(length)
    else:
        response = FileResponse(fh, content_type=file.content_type)
        response["Content-Length"] = str(file.size)
    for key, value in common.items():
        response[key] = value
    return response
