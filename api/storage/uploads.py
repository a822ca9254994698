"""Receiving upload bodies: spooled to a temporary file on the storage disk, hashed on the way.

Both ways in — multipart (through Django's upload-handler hook) and a raw streamed body — end in
a :class:`SpooledUpload`: a temporary file plus its size and sha256, never the bytes in memory.

A raw body read from a blocking stream (WSGI: gunicorn's sync worker, runserver, the test
client) is received by a thread of its own a few chunks ahead of the spool (:class:`ReadAhead`),
as the ASGI path's event loop receives it (``api.streamed_body``), and hashed there: the socket
is read and hashed while the previous chunk is written, instead of one after the other.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Protocol

from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from ..exceptions import ApplicationError
from .spool import spool_dir

CHUNK_SIZE = 4 * 1024 * 1024
# Reads of a blocking body: gunicorn's body reader hands out at most 1 MiB per step (a larger
# read is assembled from several, copied once more), and AHEAD of them wait for the spool.
READ_AHEAD_SIZE = 1024 * 1024
READ_AHEAD = 8


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

    def append(self, data: bytes, *, hashed: bool = False) -> None:
        """Write ``data`` (already given to ``hasher`` when ``hashed``) to the spool."""
        if not hashed:
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

    A stream that fills itself ahead of its reader (``reads_ahead``: the ASGI path's) is read
    in this thread; any other is read by a :class:`ReadAhead` thread. A body that ends early
    (the client hung up) is an error naming ``Content-Length``, and the temporary file is
    removed.
    """
    spool = SpooledUpload(name, content_type)
    try:
        if getattr(stream, "reads_ahead", False):
            for chunk in _chunks(stream, content_length, CHUNK_SIZE):
                spool.append(chunk)
        else:
            # The thread hashes what it reads: this one only writes.
            with ReadAhead(stream, content_length, hasher=spool.hasher) as body:
                for chunk in body:
                    spool.append(chunk, hashed=True)
    except BaseException:
        spool.close()
        raise
    if spool.received < content_length:
        spool.close()
        raise incomplete_body(spool.received, content_length)
    return spool.finish()


def _chunks(stream: Readable, length: int, size: int) -> Iterator[bytes]:
    """The body's bytes in reads of up to ``size``, until ``length`` bytes or an early end."""
    remaining = length
    while remaining > 0:
        try:
            chunk = stream.read(min(size, remaining))
        except Exception:  # servers signal a dropped connection in different ways
            chunk = b""
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


class ReadAhead:
    """The chunks of a blocking request body, read by a thread of its own up to ``ahead``
    chunks before the caller takes them (at most ``ahead + 2`` chunks in memory), and given to
    ``hasher`` (in order) on that thread, so hashing overlaps the caller's writing too.

    Iterating ends after ``length`` bytes or when the body ends early. Leaving the ``with``
    block stops the thread and waits for it: the stream (the request's socket) is never read
    once the request is answered.
    """

    def __init__(
        self,
        stream: Readable,
        length: int,
        *,
        chunk_size: int = READ_AHEAD_SIZE,
        ahead: int = READ_AHEAD,
        hasher: Any = None,
    ) -> None:
        self._chunks = _chunks(stream, length, chunk_size)
        self._hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=ahead)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="upload-body", daemon=True)

    def __enter__(self) -> ReadAhead:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def _receive(self) -> None:
        try:
            for chunk in self._chunks:
                if self._hasher is not None:
                    self._hasher.update(chunk)
                if not self._hand_over(chunk):
                    return
        finally:
            self._hand_over(None)

    def _hand_over(self, item: bytes | None) -> bool:
        """Queue ``item`` once there is room; False when the reader has gone."""
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


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
