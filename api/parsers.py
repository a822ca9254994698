"""Request body parsers for uploads."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers

from .errors import ApplicationError
from .uploads import CountingReader, incomplete_body


class CompleteMultiPartParser(parsers.MultiPartParser):
    """Multipart, refusing a body that ended before its Content-Length (a client that hung up
    mid-upload): Django's parser would otherwise take the truncated part as a whole file."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        counted = CountingReader(stream)
        result = super().parse(counted, media_type, parser_context)  # type: ignore[arg-type]
        meta = (parser_context or {})["request"].META
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
