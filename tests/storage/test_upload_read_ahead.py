"""A raw body from a blocking stream (WSGI) is received by a thread of its own a few chunks ahead
of the spool, so reading the socket overlaps hashing and writing; the thread never reads more
than its bound ahead, stops with the request, and a short or failing body keeps nothing."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from api.exceptions import ApplicationError
from api.storage.uploads import READ_AHEAD, READ_AHEAD_SIZE, ReadAhead, spool_body

WAIT_S = 30.0


class RecordingBody:
    """A blocking body of ``size`` seeded random bytes that records each read's thread and
    size; ``fail_after`` reads, it raises as a server does when the client hung up."""

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        self.data = random.Random(size).randbytes(size)
        self.offset = 0
        self.reads: list[tuple[int, int]] = []  # (thread ident, bytes asked for)
        self.fail_after = fail_after

    def read(self, size: int = -1, /) -> bytes:
        self.reads.append((threading.get_ident(), size))
        if self.fail_after is not None and len(self.reads) > self.fail_after:
            raise OSError("connection reset by peer")
        size = len(self.data) - self.offset if size < 0 else size
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk


def spooled_files() -> list[Path]:
    return [p for p in Path(settings.FILE_UPLOAD_TEMP_DIR).rglob("*") if p.is_file()]


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_blocking_body_is_read_on_a_thread_of_its_own_while_it_is_spooled() -> None:
    body = RecordingBody(5 * READ_AHEAD_SIZE + 321)
    upload = spool_body(body, len(body.data), name="reads.bin", content_type=None)
    try:
        assert (upload.received, upload.sha256) == (
            len(body.data),
            hashlib.sha256(body.data).hexdigest(),
        )
        with open(upload.temporary_file_path(), "rb") as fh:
            assert fh.read() == body.data
    finally:
        upload.close()
    readers = {ident for ident, _ in body.reads}
    assert threading.get_ident() not in readers, "the body was read by the request's thread"
    assert len(readers) == 1
    # Reads as large as the server hands out at once, the last one only what is left.
    assert [size for _, size in body.reads] == [READ_AHEAD_SIZE] * 5 + [321]
    assert spooled_files() == []


def test_the_reader_stays_a_bounded_number_of_chunks_ahead_and_stops_with_the_request() -> None:
    body = RecordingBody(4 * READ_AHEAD * READ_AHEAD_SIZE)
    with ReadAhead(body, len(body.data)) as chunks:
        # Nobody takes chunks: the thread fills the queue, then holds one more read back.
        wait_until(lambda: len(body.reads) >= READ_AHEAD + 1, "the thread did not read ahead")
        time.sleep(0.3)
        assert len(body.reads) == READ_AHEAD + 1
        first = next(iter(chunks))
        assert first == body.data[:READ_AHEAD_SIZE]
    # Leaving the block waited for the thread: the stream is not read once the request ends.
    reads_at_exit = len(body.reads)
    time.sleep(0.3)
    assert len(body.reads) == reads_at_exit <= READ_AHEAD + 2
    assert not [t for t in threading.enumerate() if t.name == "upload-body"]


@pytest.mark.parametrize(
    ("body", "announced"),
    [
        (RecordingBody(3 * READ_AHEAD_SIZE), 5 * READ_AHEAD_SIZE),  # the client stopped early
        (RecordingBody(5 * READ_AHEAD_SIZE, fail_after=2), 5 * READ_AHEAD_SIZE),  # it hung up
    ],
    ids=["short", "reset"],
)
def test_a_body_that_ends_early_keeps_nothing(body: RecordingBody, announced: int) -> None:
    with pytest.raises(ApplicationError) as raised:
        spool_body(body, announced, name="cut.bin", content_type=None)
    assert raised.value.code == "incomplete_body"
    assert "Content-Length" in raised.value.details
    assert f"of the {announced} bytes" in raised.value.message
    assert spooled_files() == []
    assert not [t for t in threading.enumerate() if t.name == "upload-body"]
