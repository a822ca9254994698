"""The ASGI raw upload's body stream (api.streamed_body.StreamedBody) on its own: an event loop
pumps ASGI ``receive`` messages into it while a thread reads, as the upload view does. What is
held is bounded in bytes, a read waiting when the client hangs up ends, and the end of the
request ends a read still waiting."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Coroutine
from typing import Any

from api.streamed_body import AHEAD_BYTES, StreamedBody

MIB = 1024 * 1024
WAIT_S = 30.0


def _body_message(data: bytes, *, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def _read_all(body: StreamedBody, size: int) -> list[bytes]:
    """Every read of ``size`` on a thread, the last one b"" (the end)."""

    def reads() -> list[bytes]:
        out = [body.read(size)]
        while out[-1]:
            out.append(body.read(size))
        return out

    return await asyncio.wait_for(asyncio.to_thread(reads), WAIT_S)


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_a_read_waiting_when_the_client_hangs_up_mid_body_returns_what_arrived_then_ends() -> None:
    async def scenario() -> None:
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        body = StreamedBody(asyncio.get_running_loop())
        pump = asyncio.create_task(body.pump(messages.get))
        await messages.put(_body_message(b"a" * 100))
        reading = asyncio.create_task(_read_all(body, 4 * MIB))
        await messages.put({"type": "http.disconnect"})
        # Without the request ending (no body.end()): the hang-up alone ends the read.
        assert b"".join(await reading) == b"a" * 100
        await asyncio.wait_for(pump, WAIT_S)
        assert body.disconnected.is_set()

    _run(scenario)


def test_the_end_of_the_request_ends_a_read_still_waiting() -> None:
    async def scenario() -> None:
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        body = StreamedBody(asyncio.get_running_loop())
        pump = asyncio.create_task(body.pump(messages.get))
        await messages.put(_body_message(b"b" * 10))
        reading = asyncio.create_task(_read_all(body, 4 * MIB))
        # After what has arrived, the read waits for more (the client is still connected)
        # until the request is over.
        done, _ = await asyncio.wait({reading}, timeout=0.2)
        assert not done
        pump.cancel()
        body.end()
        assert b"".join(await reading) == b"b" * 10
        assert body.read(1) == b""

    _run(scenario)


def test_what_is_held_ahead_of_the_reader_is_bounded_in_bytes_and_the_body_arrives_whole() -> None:
    """Messages of 1 MiB: at most AHEAD_BYTES (and the message in hand) are received before the
    reader takes any, however few messages that is; then the body is read whole, in order."""
    rng = random.Random(21)
    chunks = [rng.randbytes(MIB) for _ in range(4)] * 6 + [rng.randbytes(12_345)]
    received = 0

    async def scenario() -> None:
        nonlocal received
        pending = list(chunks)
        body = StreamedBody(asyncio.get_running_loop())

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not pending:
                await asyncio.Event().wait()  # (the disconnect comes with the request's end)
            chunk = pending.pop(0)
            received += len(chunk)
            return _body_message(chunk, more=bool(pending))

        pump = asyncio.create_task(body.pump(receive))
        for _ in range(500):  # the pump runs on without the reader until it must wait
            await asyncio.sleep(0)
        assert received <= AHEAD_BYTES + MIB, received / MIB
        assert pending
        reads = await _read_all(body, 3 * MIB + 7)
        assert hashlib.sha256(b"".join(reads)).digest() == hashlib.sha256(b"".join(chunks)).digest()
        assert all(len(r) <= 3 * MIB + 7 for r in reads)
        pump.cancel()
        body.end()

    _run(scenario)


def test_reading_everything_at_once_reads_to_the_end_of_the_body() -> None:
    async def scenario() -> None:
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        body = StreamedBody(asyncio.get_running_loop(), ahead=MIB)
        pump = asyncio.create_task(body.pump(messages.get))
        data = random.Random(5).randbytes(3 * MIB + 1)
        for start in range(0, len(data), 64 * 1024):
            await messages.put(_body_message(data[start : start + 64 * 1024]))
        await messages.put(_body_message(b"", more=False))
        assert await asyncio.wait_for(asyncio.to_thread(body.read), WAIT_S) == data
        assert body.read(10) == b""
        await messages.put({"type": "http.disconnect"})
        await asyncio.wait_for(pump, WAIT_S)

    _run(scenario)
