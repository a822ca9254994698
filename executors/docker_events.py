"""Following the Docker engine's event stream: which jobs' containers just exited.

One daemon thread per executor and process follows ``GET /events`` filtered to the
executor's containers (label ``ferry.executor=<alias>``) and their ``die`` and ``oom`` events,
and wakes whoever waits in :meth:`ExitWatch.wait`. Their ``start`` events (and, when the stream
connects, the runs going on) give each run's deadline: a run still going at its deadline is
told of like an exit, so the poll that follows stops it then. When the stream breaks (the engine restarts,
the socket goes away) it reconnects with growing pauses, asking for the events since the last
moment it broke, so an exit during the gap is still reported; while it is down, ``wait`` simply
waits out its timeout and the caller's poll finds what changed (polling is the fallback).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

logger = logging.getLogger(__name__)

EXIT_EVENTS = ("die", "oom")
START_EVENT = "start"  # (with the run's deadline among its labels)
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0


class ExitWatch:
    """The job ids whose containers exited, as the engine reports them."""

    def __init__(
        self,
        connect: Callable[[], Any],
        labels: dict[str, str],
        job_label: str,
        deadline_label: str | None = None,
    ):
        # connect(): a new docker.DockerClient (the thread keeps its own: a stream holds it).
        self._connect = connect
        self._labels = [f"{key}={value}" for key, value in labels.items()]
        events = [*EXIT_EVENTS, START_EVENT] if deadline_label else list(EXIT_EVENTS)
        self._filters = {"type": ["container"], "event": events, "label": self._labels}
        self._job_label = job_label
        self._deadline_label = deadline_label
        self._changed = threading.Condition()
        self._exited: set[UUID] = set()
        # Runs still going, by job, with their deadline (unix time, ``deadline_label``): a run
        # past it is told of as if it had exited, so its poll stops it on time rather than at
        # its next round (a minute for an engine whose exits come as events).
        self._deadlines: dict[UUID, float] = {}
        self._woken = False  # wake(): the waiter is wanted elsewhere
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._stream: Any = None
        self._since = 0
        self.connected = threading.Event()

    def start(self) -> None:
        """Follow the stream from now on (again in a forked child, which has no thread)."""
        with self._changed:
            alive = self._thread is not None and self._thread.is_alive()
            if alive and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            # From a second before now: an exit between this call and the stream's connection
            # is reported too.
            self._since = int(time.time()) - 1
            self._stop.clear()
            self.connected.clear()
            self._thread = threading.Thread(
                target=self._follow, name="docker-exit-events", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait(self, timeout: float) -> set[UUID]:
        """Block until an exit was seen (or one is pending), at most ``timeout`` seconds; the
        job ids seen since the last call."""
        self.start()
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._exited and not self._woken:
                self._exited |= self._overdue()
                remaining = deadline - time.monotonic()
                if self._exited or remaining <= 0:
                    break
                self._changed.wait(min(remaining, self._until_next_deadline()))
            seen, self._exited, self._woken = self._exited, set(), False
        return seen

    def wake(self) -> None:
        """End the wait under way (or the next one) at once, with what was seen so far."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    def _overdue(self) -> set[UUID]:
        """The runs past their deadline (told of once); call with the lock held."""
        now = time.time()
        overdue = {job_id for job_id, at in self._deadlines.items() if now > at}
        for job_id in overdue:
            del self._deadlines[job_id]
        return overdue

    def _until_next_deadline(self) -> float:
        if not self._deadlines:
            return float("inf")
        return max(0.0, min(self._deadlines.values()) - time.time()) + 0.01

    def _seen(self, event: dict[str, Any]) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        try:
            job_id = UUID(str(attributes.get(self._job_label)))
        except ValueError:
            return
        with self._changed:
            if (event.get("Action") or event.get("status")) == START_EVENT:
                self._track(job_id, attributes)
                return
            self._deadlines.pop(job_id, None)
            self._exited.add(job_id)
            self._changed.notify_all()

    def _track(self, job_id: UUID, labels: dict[str, Any]) -> None:
        """Keep a started run's deadline (the lock held); a waiter looks at it again."""
        try:
            self._deadlines[job_id] = float(labels.get(self._deadline_label or "") or "")
        except ValueError:
            return
        self._changed.notify_all()

    def _running_now(self, client: Any) -> None:
        """The deadlines of the runs going on when the stream connects: started before this
        process followed the engine (the poll loop moved to another worker process)."""
        if not self._deadline_label:
            return
        for container in client.containers.list(
            sparse=True, filters={"label": self._labels, "status": "running"}
        ):
            labels = container.attrs.get("Labels") or {}
            try:
                job_id = UUID(str(labels.get(self._job_label)))
            except ValueError:
                continue
            with self._changed:
                self._track(job_id, labels)

    def _follow(self) -> None:
        since = self._since  # after a break: the events since it
        pause = RECONNECT_FIRST_S
        while not self._stop.is_set():
            client = None
            try:
                client = self._connect()
                self._stream = client.api.events(since=since, filters=self._filters, decode=True)
                if self._stop.is_set():  # stop() came while it connected
                    return
                self._running_now(client)  # (a run that ends meanwhile: its die event follows)
                self.connected.set()
                pause = RECONNECT_FIRST_S
                for event in self._stream:
                    if isinstance(event, dict):
                        self._seen(event)
                    if self._stop.is_set():
                        return
            except Exception as exc:  # the engine went away: reconnect, polling meanwhile
                logger.debug("docker events: the stream broke: %r", exc)
            finally:
                self.connected.clear()
                self._stream = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
            # Events of the second the stream broke in are asked for again: seeing an exit
            # twice only costs a poll, missing one costs a poll interval.
            since = int(time.time()) - 1
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, RECONNECT_MAX_S)
