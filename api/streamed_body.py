"""The raw upload's body under ASGI goes from the socket to the view as it arrives.

Django's ASGI handler reads a request's whole body into a temporary file before any view runs:
a 1 GiB ``PUT /api/files/upload/`` was written to disk once by Django and once more by the
upload's own spool (which hashes it), and the client waited for both. ``StreamedUploads`` wraps
the ASGI application: for the routes in ``STREAMED_ROUTES`` Django is handed an empty body, and
the view reads the real one through ``body_of(request)`` — a file-like object filled from the
server's ``receive`` by a task on the event loop, up to ``AHEAD_BYTES`` ahead of the view (when
the view is slower, the task stops receiving and the server stops reading the socket).
Permissions and checks run before a byte is read, so a refused upload is answered without
receiving it.

A client that hangs up ends the stream early, and a read waiting for more returns what has
arrived then the end (the view refuses the short body, as under WSGI); the task ends with the
request, and so does a read still waiting. Under WSGI the view reads the request itself, through a thread
that receives a few chunks ahead of it (``api.storage.uploads.ReadAhead``).

Nothing here imports Django's models: config/asgi.py wraps the application before setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

# (method, path) of the requests whose body the view streams itself.
STREAMED_ROUTES = frozenset({("PUT", "/api/files/upload/")})
SCOPE_KEY = "ferry.streamed_body"
# Bytes of the body held between the socket and the view: once this much waits for the view's
# thread, the event loop stops receiving (and the server stops reading the socket) until the
# thread takes some.
AHEAD_BYTES = 4 * 1024 * 1024
# A read hands over the next received chunk as it is (uvicorn's are ~256 KiB when the view keeps
# up), joined with the following ones only while shorter than this: a chunk is hashed and
# written while still in the CPU's cache, never first copied into a bigger buffer.
JOIN_BELOW = 64 * 1024


class StreamedBody:
    """The request body, read by the view's thread from what the event loop receives.

    The loop's ``pump`` appends each received chunk to a buffer shared with the reading thread
    under a lock: no coroutine or future per chunk or per read. A reader with nothing to take
    waits on a condition of that lock; the pump, when ``ahead`` bytes are held, waits on an
    event that the reader sets (through the loop) once it has taken some.
    """

    # Filled ahead of its reader already (api.storage.uploads reads it without a thread).
    reads_ahead = True

    def __init__(self, loop: asyncio.AbstractEventLoop, *, ahead: int = AHEAD_BYTES) -> None:
        self._loop = loop
        self._ahead = ahead
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._chunks: deque[bytes] = deque()
        self._held = 0  # bytes in _chunks
        self._ended = False  # nothing more will be appended
        self._reader_waits = False
        self._pump_waits = False
        self._room = asyncio.Event()
        self.disconnected = asyncio.Event()

    async def pump(self, receive: Receive) -> None:
        """Move the body's chunks into the buffer until the body ended or the client left
        (either ends the stream), then wait for the disconnect that ends the request."""
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                more = message.get("more_body", False)
                self._append(message.get("body", b""), last=not more)
                if not more:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    break
                if self._full():
                    await self._room.wait()
        finally:
            self.end(discard=False)
            self.disconnected.set()

    def _append(self, chunk: bytes, *, last: bool) -> None:
        with self._lock:
            if chunk and not self._ended:
                self._chunks.append(bytes(chunk))
                self._held += len(chunk)
            self._ended = self._ended or last
            if self._reader_waits:
                self._arrived.notify()

    def _full(self) -> bool:
        """Whether the pump must wait for the reader to take some (which then wakes it)."""
        with self._lock:
            if self._held < self._ahead or self._ended:
                return False
            self._room.clear()
            self._pump_waits = True
            return True

    def end(self, *, discard: bool = True) -> None:
        """Nothing more will arrive: a reader still waiting (or reading later) gets what is
        held then the end, or the end at once with ``discard`` (the request is over)."""
        with self._lock:
            self._ended = True
            if discard:
                self._chunks.clear()
                self._held = 0
            self._arrived.notify_all()

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left for -1); b"" once the body ended. Waits only
        when nothing has arrived yet. Called from a thread, never from the event loop."""
        if size < 0:
            return b"".join(iter(lambda: self.read(self._ahead), b""))
        with self._lock:
            while not self._chunks and not self._ended and size:
                self._reader_waits = True
                self._arrived.wait()
            self._reader_waits = False
            parts = self._take(size)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _take(self, size: int) -> list[bytes]:
        """The next chunk (and the following ones while shorter than JOIN_BELOW), at most
        ``size`` bytes, with the lock held; wakes the pump if it waits for room."""
        parts: list[bytes] = []
        have = 0
        while self._chunks and have < size and (not parts or have < JOIN_BELOW):
            chunk = self._chunks.popleft()
            if have + len(chunk) > size:
                chunk, rest = chunk[: size - have], chunk[size - have :]
                self._chunks.appendleft(rest)
            parts.append(chunk)
            have += len(chunk)
        self._held -= have
        if self._pump_waits and self._held < self._ahead:
            self._pump_waits = False
            with contextlib.suppress(RuntimeError):  # (the loop closed: the request is over)
                self._loop.call_soon_threadsafe(self._room.set)
        return parts or [b""]


class StreamedUploads:
    """ASGI middleware: the body of a route in ``STREAMED_ROUTES`` reaches its view as a
    stream (``body_of``) instead of being read in full before the view runs."""

    def __init__(self, app: Application) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], route_of(scope)) not in STREAMED_ROUTES:
            await self.app(scope, receive, send)
            return
        body = StreamedBody(asyncio.get_running_loop())
        pump = asyncio.create_task(body.pump(receive))
        handed_over = False

        async def empty_body_then_disconnect() -> Message:
            nonlocal handed_over
            if not handed_over:
                handed_over = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await body.disconnected.wait()
            return {"type": "http.disconnect"}

        try:
            await self.app({**scope, SCOPE_KEY: body}, empty_body_then_disconnect, send)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump  # (a receive that failed ended the body: the view saw it short)
            body.end()


def route_of(scope: Scope) -> str:
    """The path of the request within the application (without its root_path)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def body_of(request: Any) -> Any:
    """What to read a streamed route's body from: the stream under ``StreamedUploads``,
    else the request itself (WSGI, the test client)."""
    scope = getattr(request, "scope", None)
    streamed = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
    return streamed if streamed is not None else request
