"""The raw upload's body under ASGI goes from the socket to the view as it arrives.

Django's ASGI handler reads a request's whole body into a temporary file before any view runs:
a 1 GiB ``PUT /api/files/upload/`` was written to disk once by Django and once more by the
upload's own spool (which hashes it), and the client waited for both. ``StreamedUploads`` wraps
the ASGI application: for the routes in ``STREAMED_ROUTES`` Django is handed an empty body, and
the view reads the real one through ``body_of(request)`` — a file-like object filled from the
server's ``receive`` by a task on the event loop, a few chunks ahead of the view (a bounded
queue: when the view is slower, the server stops reading the socket). Permissions and checks
run before a byte is read, so a refused upload is answered without receiving it.

A client that hangs up ends the stream early (the view refuses the short body, as under WSGI);
the task ends with the request. Under WSGI the view reads the request itself, through a thread
that receives a few chunks ahead of it (``api.storage.uploads.ReadAhead``).

Nothing here imports Django's models: config/asgi.py wraps the application before setup.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# Body messages held between the socket and the view (uvicorn's are up to 64 KiB each).
AHEAD = 16


class StreamedBody:
    """The request body, read by the view's thread from what the event loop receives."""

    # Filled ahead of its reader already (api.storage.uploads reads it without a thread).
    reads_ahead = True

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=AHEAD)
        self._rest = b""
        self._ended = False
        self.disconnected = asyncio.Event()

    async def pump(self, receive: Receive) -> None:
        """Move the body's messages into the queue (None: the body ended, or the client left),
        then wait for the disconnect that ends the request."""
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                if chunk:
                    await self._chunks.put(bytes(chunk))
                if not message.get("more_body", False):
                    await self._chunks.put(None)
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    break
        finally:
            self.disconnected.set()

    def end(self) -> None:
        """The request is over: a reader still waiting (or reading later) sees the end."""
        while not self._chunks.empty():
            self._chunks.get_nowait()
        self._chunks.put_nowait(None)

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left for -1); b"" once the body ended. Waits only
        when nothing has arrived yet. Called from a thread, never from the event loop."""
        if self._ended and not self._rest:
            return b""
        return asyncio.run_coroutine_threadsafe(self._take(size), self._loop).result()

    async def _take(self, size: int) -> bytes:
        parts = [self._rest] if self._rest else []
        have = len(self._rest)
        self._rest = b""
        while not self._ended and (size < 0 or have < size):
            if have and self._chunks.empty():
                break  # (what has arrived, rather than waiting for more)
            chunk = await self._chunks.get()
            if chunk is None:
                self._ended = True
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if 0 <= size < len(data):
            data, self._rest = data[:size], data[size:]
        return data


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
