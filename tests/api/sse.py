"""Test helpers: Ferry's ASGI app under a real uvicorn server (in a thread of the test process,
so it uses the test database), and a Server-Sent Events client that reads in a thread."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import requests
import uvicorn


@contextmanager
def asgi_server() -> Iterator[str]:
    """Serve config.asgi on a free loopback port; yields the base URL."""
    from django.db import connections

    from config.asgi import application

    # As config.asgi arranges for a served process: request threads don't keep connections.
    database = connections.settings["default"]
    kept_for = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application, lifespan="off", log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        database["CONN_MAX_AGE"] = kept_for


@dataclass
class SseClient:
    """One open ``GET /api/events/``; events land in ``events`` (a queue), comments are counted."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    received_at: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._session = requests.Session()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._session.get(
                self.url, headers=self.headers, cookies=self.cookies, stream=True, timeout=(10, 60)
            ) as response:
                self._response = response
                self.status = response.status_code
                if response.status_code != 200:
                    self.connected.set()
                    return
                frame: dict[str, str] = {}
                for raw in response.iter_lines(decode_unicode=True):
                    line = raw or ""
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                        if line[1:].strip() == "connected":
                            self.connected.set()
                    elif line == "":
                        if "data" in frame:
                            event = json.loads(frame["data"])
                            self.received_at[event["id"]] = time.monotonic()
                            self.events.put(event)
                        frame = {}
                    else:
                        name, _, value = line.partition(":")
                        frame[name] = value.removeprefix(" ")
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by the test
        finally:
            self.connected.set()

    def wait_connected(self, timeout: float = 30) -> int | None:
        assert self.connected.wait(timeout), "the stream did not open"
        return self.status

    def next(self, timeout: float = 20) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        if self._response is not None:
            raw = self._response.raw
            # shut the socket so the reader thread's blocking read ends at once
            sock = getattr(getattr(raw, "_fp", None), "fp", None)
            sock = getattr(getattr(sock, "raw", None), "_sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._response.close()
        self._session.close()
        self._thread.join(timeout=10)
