"""Streams: readers that hash or chunk what passes through them, and checks shared by the clients."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Protocol

from .errors import BucketError
from .limits import HEX64, MAX_PRESIGN_SECONDS


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class HashingReader:
    """Reads at most ``limit`` bytes from ``source``, hashing (sha256) and counting on the way.

    Not seekable (a rewind would spoil the hash); ``tell()`` is the count, which is what
    resumable-upload code asks for.
    """

    def __init__(self, source: Readable, limit: int | None = None) -> None:
        self._source = source
        self._limit = limit
        self.hasher = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        if self._limit is not None:
            left = self._limit - self.count
            if left <= 0:
                return b""
            size = left if size is None or size < 0 else min(size, left)
        data = self._source.read(size)
        if data:
            self.hasher.update(data)
            self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (whence == io.SEEK_SET and offset == self.count) or (
            whence == io.SEEK_CUR and offset == 0
        ):
            return self.count
        raise io.UnsupportedOperation("a hashed stream cannot be rewound")

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


class ChunkReader:
    """A file-like ``read()`` over an iterator of byte chunks, holding at most one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = b""
        self._offset = 0

    def read(self, size: int = -1, /) -> bytes:
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            if self._offset >= len(self._current):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._current, self._offset = nxt, 0
                continue
            end = len(self._current) if wanted is None else self._offset + (wanted - got)
            piece = self._current[self._offset : end]
            self._offset += len(piece)
            got += len(piece)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def is_seekable(fileobj: Any) -> bool:
    try:
        return bool(fileobj.seekable()) and hasattr(fileobj, "tell")
    except (AttributeError, ValueError, OSError):
        return False


def sha256_of_seekable(fileobj: Any, size: int, chunk_size: int) -> str:
    start = fileobj.tell()
    hasher = hashlib.sha256()
    left = size
    while left > 0:
        data = fileobj.read(min(chunk_size, left))
        if not data:
            break
        hasher.update(data)
        left -= len(data)
    fileobj.seek(start)
    return hasher.hexdigest()


def check_expiry(expires_s: int) -> int:
    if not 1 <= int(expires_s) <= MAX_PRESIGN_SECONDS:
        raise BucketError(
            f"a signed URL's lifetime must be 1 to {MAX_PRESIGN_SECONDS} seconds",
            code="invalid_expiry",
            status_code=HTTPStatus.BAD_REQUEST.value,
        )
    return int(expires_s)


def b64_to_hex(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def valid_sha256(value: str | None) -> str | None:
    if value and HEX64.fullmatch(value.lower()):
        return value.lower()
    return None
