"""A counting proxy in front of the Docker engine's socket (a test server): what a client asks
the engine, as the engine sees it."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path
from typing import Any

REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


class CountingProxy:
    """A Unix socket in front of the Docker engine's that records each request line it
    forwards (a test server: what an executor asks the engine, as the engine sees it)."""

    def __init__(self, folder: Path, engine_socket: str = "/var/run/docker.sock") -> None:
        self.path = str(folder / "docker.sock")
        self.engine_socket = engine_socket
        self.requests: list[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._server.settimeout(0.2)  # accept() looks at _stop this often
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> CountingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        for open_socket in self._sockets:
            with contextlib.suppress(OSError):
                open_socket.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.engine_socket)
            self._sockets += [client, engine]
            self._spawn(self._pipe, client, engine, True)
            self._spawn(self._pipe, engine, client, False)

    def _pipe(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if record:
                    pending += chunk
                    seen_to = 0
                    for match in REQUEST_LINE.finditer(pending):
                        self.requests.append(f"{match[1].decode()} {match[2].decode()}")
                        seen_to = match.end()
                    pending = pending[seen_to:][-200:]
                target.sendall(chunk)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
