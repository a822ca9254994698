"""Receiving upload bodies: spooled to a temporary file on the storage disk, hashed on the way.

Both ways in — multipart (through Django's upload-handler hook) and a raw streamed body — end in
a :class:`SpooledUpload`: a temporary file plus its size and sha256, never the bytes in memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, Protocol

from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from ..exceptions import ApplicationError
from .spool import spool_dir

CHUNK_SIZE = 4 * 1024 * 1024


class SpooledUpload(TemporaryUploadedFile):
    """A temporary file (deleted on close unless moved into storage) with its sha256."""

    def __init__(self, name: str, content_type: str | None) -> None:
        # In this process's own spool folder (api.storage.spool): a sweeper removes it once the
        # process is gone, whatever killed it.
        _, ext = os.path.splitext(name)
        # Closed (and so removed) by close(), or moved into storage.
        spool = tempfile.NamedTemporaryFile(suffix=".upload" + ext[:32], dir=spool_dir())  # noqa: SIM115
        UploadedFile.__init__(self, spool, name, content_type or "application/octet-stream", 0)
        self._spool = spool
        self.hasher = hashlib.sha256()
        self.received = 0

    def append(self, data: bytes) -> None:
        self.hasher.update(data)
        self._spool.write(data)
        self.received += len(data)
        self.size = self.received

    def finish(self) -> SpooledUpload:
        self._spool.flush()
        self._spool.seek(0)
        return self

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


class HashingUploadHandler(FileUploadHandler):
    """Django upload handler: every multipart file part goes to a :class:`SpooledUpload`."""

    chunk_size = CHUNK_SIZE

    # Django's multipart parser closes ``handler.file`` when it aborts, so keep that name.
    file: SpooledUpload

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file = SpooledUpload(self.file_name or "upload", self.content_type)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.file.append(raw_data)

    def file_complete(self, file_size: int) -> SpooledUpload:
        return self.file.finish()

    def upload_interrupted(self) -> None:
        if hasattr(self, "file"):
            self.file.close()


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def spool_body(
    stream: Readable, content_length: int, *, name: str, content_type: str | None
) -> SpooledUpload:
    """Read exactly ``content_length`` bytes of a request body into a :class:`SpooledUpload`.

    A body that ends early (the client hung up) is an error naming ``Content-Length``, and the
    temporary file is removed.
    """
    spool = SpooledUpload(name, content_type)
    remaining = content_length
    try:
        while remaining > 0:
            try:
                chunk = stream.read(min(CHUNK_SIZE, remaining))
            except Exception:  # servers signal a dropped connection in different ways
                chunk = b""
            if not chunk:
                break
            spool.append(chunk)
            remaining -= len(chunk)
    except BaseException:
        spool.close()
        raise
    if remaining:
        spool.close()
        raise incomplete_body(content_length - remaining, content_length)
    return spool.finish()


def incomplete_body(received: int, announced: int) -> ApplicationError:
    message = (
        f"The body ended after {received} of the {announced} bytes announced by "
        "Content-Length; nothing was kept. Send the whole file again."
    )
    return ApplicationError(message, details={"Content-Length": [message]}, code="incomplete_body")


class CountingReader:
    """Wraps a request body and counts the bytes read from it."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data
