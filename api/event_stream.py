"""Fan-out of new Events to the open streams of one process (one event loop).

One :class:`Hub` per event loop reads the new events once for all its streams: woken by
PostgreSQL's NOTIFY (one LISTEN connection per process), or every ``poll_seconds`` on SQLite
(and, on PostgreSQL, as a safety net while the listener is down). A notice carries its event
(api.events.notice_text) and arrives in the order of the ids (their writers commit in that
order): the one right after the hub's cursor goes to the streams as it is, with no read of the
table; a notice with the id alone (a large event), or one after a gap (an id a rolled-back
writer drew, a notice lost while the listener reconnected), has the hub read the table. Each
stream gets every new event in its queue and keeps the ones its user may see. The hub's
database work runs in one thread (one connection) however many streams are open.

Each stream's queue holds at most ``FERRY_EVENTS_QUEUE_MAX`` events: a client that reads slower
than events come is marked behind (nothing more is queued for it) and its stream ends with a
retry hint; it reconnects with ``Last-Event-ID`` and catches up from the table. The hub also
keeps what its streams watch (api.watches) in the database, renewing the leases in one UPDATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, connections

from .events import NOTIFY_CHANNEL, event_of_notice, events_after, latest_event_id
from .pg_listen import listen_conninfo
from .watches import WatchScope, close_watch, open_watch, renew_watches

log = logging.getLogger(__name__)


def close_connection() -> None:
    """This thread's database connection (resolved in the thread that calls it)."""
    connection.close()


def _in_db_thread(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        connection.close()  # a broken connection is opened anew next time
        raise


class Hub:
    def __init__(self) -> None:
        self.streams: set[asyncio.Queue[dict[str, Any]]] = set()
        self.behind: set[asyncio.Queue[dict[str, Any]]] = set()  # full: their streams end
        self.watches: dict[asyncio.Queue[dict[str, Any]], list[int]] = {}
        self.cursor = 0
        self.wake = asyncio.Event()
        self.listening = False
        self._tasks: list[asyncio.Task[None]] = []
        # Set when the hub stops: its loops end even when a cancel is lost (asyncio.wait_for
        # may swallow one that comes as its wait ends, on Python 3.11).
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._db_thread: ThreadPoolExecutor | None = None

    async def _db(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` in the hub's own thread (its one database connection)."""
        assert self._db_thread is not None
        return await sync_to_async(_in_db_thread, thread_sensitive=False, executor=self._db_thread)(
            fn, *args
        )

    @property
    def poll_seconds(self) -> float:
        if self.listening:
            return float(settings.FERRY_EVENTS_SAFETY_POLL_SECONDS)
        return float(settings.FERRY_EVENTS_POLL_SECONDS)

    async def subscribe(
        self, watch: WatchScope | None = None
    ) -> tuple[asyncio.Queue[dict[str, Any]], int]:
        """A queue that receives every event with an id above the returned cursor (the hub's
        at this moment), at most ``FERRY_EVENTS_QUEUE_MAX`` of them unread (see
        :meth:`fell_behind`). Returns once the cursor is set: a catch-up read made after this
        misses nothing, and the queue has every event after the cursor. ``watch``: what the
        stream watches, kept in the database while it is open."""
        async with self._lock:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(
                maxsize=max(1, int(settings.FERRY_EVENTS_QUEUE_MAX))
            )
            if not self._tasks:
                self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="ferry-events")
                self.cursor = await self._db(latest_event_id)
                stop = self._stop = asyncio.Event()
                self._tasks = [
                    asyncio.create_task(self._fetch_loop(stop), name="ferry events"),
                    asyncio.create_task(self._renew_loop(stop), name="ferry stream watches"),
                ]
                if connections["default"].vendor == "postgresql" and settings.FERRY_EVENTS_NOTIFY:
                    self._tasks.append(
                        asyncio.create_task(self._listen(stop), name="ferry events listen")
                    )
            self.streams.add(queue)
            if watch is not None:
                try:
                    self.watches[queue] = await self._db(open_watch, watch)
                except Exception:  # the stream works without it (its jobs are polled slower)
                    log.warning("could not record what a stream watches", exc_info=True)
            return queue, self.cursor

    def fell_behind(self, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Whether events were left out of this stream's queue because it was full."""
        return queue in self.behind

    async def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """The last stream to leave stops the hub (its listener and database connection)."""
        async with self._lock:
            self.streams.discard(queue)
            self.behind.discard(queue)
            watch = self.watches.pop(queue, [])
            if watch:
                with contextlib.suppress(Exception):  # else it expires
                    await self._db(close_watch, watch)
            if self.streams or not self._tasks:
                return
            tasks, self._tasks = self._tasks, []
            db_thread, self._db_thread = self._db_thread, None
            self.listening = False
            self._stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=10)  # (a loop that lost its cancel ends by the flag)
        if db_thread is not None:
            await sync_to_async(_in_db_thread, thread_sensitive=False, executor=db_thread)(
                close_connection
            )
            db_thread.shutdown(wait=False)

    async def _fetch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_seconds)
            self.wake.clear()
            if stop.is_set():
                return
            try:
                while True:
                    batch = await self._db(events_after, self.cursor)
                    # No await from here to the cursor's update: a stream that subscribes
                    # sees a cursor that matches what its queue will get. (A notice may have
                    # brought some of the batch meanwhile.)
                    for event in batch:
                        if event["id"] > self.cursor:
                            self._deliver(event)
                    if len(batch) < 500:
                        break
            except Exception:  # the database went away: retry on the next wake or poll
                log.exception("reading new events failed")

    def _deliver(self, event: dict[str, Any]) -> None:
        for queue in list(self.streams):
            self._offer(queue, event)
        self.cursor = event["id"]

    def _noticed(self, text: str) -> None:
        """A notice: its event goes out when it is the next one and carried whole, else the
        table is read (the fetch loop skips what went out meanwhile)."""
        event_id, event = event_of_notice(text)
        if event is not None and event_id == self.cursor + 1:
            self._deliver(event)
        elif event_id is None or event_id > self.cursor:
            self.wake.set()

    def _offer(self, queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
        if queue in self.behind:
            return
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:  # a client reading too slowly: its stream ends (see above)
            self.behind.add(queue)

    async def _renew_loop(self, stop: asyncio.Event) -> None:
        """Keep the leases of what this process's streams watch (one UPDATE for all)."""
        while not stop.is_set():
            await asyncio.sleep(float(settings.FERRY_WATCH_RENEW_S))
            ids = [row for rows in self.watches.values() for row in rows]
            try:
                await self._db(renew_watches, ids)
            except Exception:  # the database went away: they expire, or are renewed next time
                log.warning("could not renew what the streams watch", exc_info=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        import psycopg

        conninfo = listen_conninfo()
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    autocommit=True, **conninfo
                ) as listener:
                    await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening = True
                    self.wake.set()  # whatever committed before LISTEN took effect
                    async for notice in listener.notifies():
                        self._noticed(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event listener lost its connection; polling meanwhile", exc_info=True)
            self.listening = False
            self.wake.set()
            await asyncio.sleep(1.0)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found


def open_stream_count() -> int:
    return sum(len(h.streams) for h in list(_hubs.values()))


class StreamClientsCollector:
    """``ferry_stream_clients`` for /metrics: the event streams this process serves (each
    server process answers a scrape for itself)."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(
            "ferry_stream_clients",
            "Event streams (GET /api/events/) open on this server process.",
            value=open_stream_count(),
        )
