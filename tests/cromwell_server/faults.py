"""Fault switches and request counters, applied around the Cromwell API (never ``/_test/``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from .errors import ApiError

CONTROL_PREFIX = "/_test/"
UNAVAILABLE_MESSAGE = "Cromwell service is unavailable (test fault switch: status_503_next)"


@dataclass
class FaultState:
    status_503_next: int = 0  # the next N API requests answer 503
    drop_next: int = 0  # the next N API requests are dropped without an answer
    down: bool = False  # every API request is dropped until switched off
    delay_s: float = 0.0  # every API request waits this long first
    # No /api/womtool/v1/describe (a Cromwell older than 41, or a gateway that doesn't pass it):
    # it answers 404 as an unknown route does.
    no_describe: bool = False
    # describe answers {"valid": false, "errors": [this]} for any document (a workflow miniwdl
    # accepts and Cromwell's womtool refuses, such as mixed tabs and spaces in a command).
    describe_refuses: str = ""


@dataclass(frozen=True)
class FaultDecision:
    delay_s: float
    drop: bool
    unavailable: bool
    route_missing: bool = False


class FaultSwitches:
    """Thread-safe switches; each API request takes one decision."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = FaultState()

    def set(self, **switches: Any) -> dict[str, Any]:
        with self._lock:
            for key, value in switches.items():
                setattr(self._state, key, value)
            return asdict(self._state)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._state)

    def reset(self) -> None:
        with self._lock:
            self._state = FaultState()

    def decide(self, route: str) -> FaultDecision:
        with self._lock:
            state = self._state
            drop = state.down or state.drop_next > 0
            unavailable = not drop and state.status_503_next > 0
            if state.drop_next > 0 and not state.down:
                state.drop_next -= 1
            elif unavailable:
                state.status_503_next -= 1
            missing = state.no_describe and route == "describe"
            return FaultDecision(state.delay_s, drop, unavailable, missing)


class RequestCounters:
    """Requests per route (Cromwell's operation names) plus ``_total``, ``_503``, ``_dropped``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FaultMiddleware:
    """WSGI middleware: counts API requests by route and applies the fault switches."""

    def __init__(
        self, app: WsgiApp, url_map: Map, faults: FaultSwitches, counters: RequestCounters
    ) -> None:
        self.app = app
        self.url_map = url_map
        self.faults = faults
        self.counters = counters

    def _route_name(self, environ: dict[str, Any]) -> str:
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return "_unrouted"
        return str(endpoint)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        route = self._route_name(environ)
        self.counters.add(route)
        self.counters.add("_total")
        decision = self.faults.decide(route)
        if decision.delay_s > 0:
            time.sleep(decision.delay_s)
        if decision.drop:
            self.counters.add("_dropped")
            _drop_connection(environ)
        if decision.unavailable:
            self.counters.add("_503")
            return _unavailable_answer(start_response)
        if decision.route_missing:
            return _no_such_route_answer(start_response)
        return self.app(environ, start_response)


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection without a byte of answer (werkzeug treats the
    ConnectionError raised here as a dropped connection and stays quiet)."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("connection dropped by a test fault switch")


def _unavailable_answer(start_response: StartResponse) -> list[bytes]:
    body = json.dumps(ApiError(503, UNAVAILABLE_MESSAGE).body()).encode()
    start_response(
        "503 Service Unavailable",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _no_such_route_answer(start_response: StartResponse) -> list[bytes]:
    """What Cromwell's HTTP layer (akka-http) answers for a route it doesn't have."""
    body = b"The requested resource could not be found."
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
