"""django-q2's ORM broker (the queue is a table in Ferry's database), woken by NOTIFY.

The stock ORM broker's pusher looks at the queue table every ``Q_CLUSTER["poll"]`` seconds
whether anything was queued or not: at 0.1-0.2 s, most of an idle or lightly loaded worker's
CPU and database statements. On PostgreSQL this one sends a NOTIFY with each task it enqueues;
its dequeue, finding nothing, waits for one on a LISTEN connection of its own, at most
``FERRY_Q_WAKE_S`` seconds. The table stays the queue, with the same locking as the stock
broker: a task whose notice is missed (sent while the listener reconnected, or a task whose
lock expired and is due again) is found by the next look, at most ``FERRY_Q_WAKE_S`` later.
On other databases (SQLite in development) it is the stock broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
from time import sleep
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from api.pg_listen import listen_conninfo

logger = logging.getLogger(__name__)

TASKS_CHANNEL = "ferry_tasks"


def _postgres() -> bool:
    return bool(connections[Conf.ORM].vendor == "postgresql")


class NotifiedORM(ORM):  # type: ignore[misc]  # (django-q2 has no type hints)
    """The ORM broker whose idle pusher waits for a NOTIFY instead of looking every poll."""

    _listener: Any = None
    _listener_pid = 0

    @staticmethod
    def get_connection(list_key: str | None = None) -> Any:
        """The queue table. The stock broker first closes the process's "old" connections on
        every call: mid-request that dropped a web worker's connection after each enqueue
        (CONN_MAX_AGE=0 under the pool) and made every look of the pusher ask ``SELECT 1``
        before its query (CONN_HEALTH_CHECKS). Here a connection that broke is replaced when a
        query fails on it (``_take``); the worker closes old connections between tasks."""
        if not _postgres():
            return ORM.get_connection(list_key)
        return OrmQ.objects.using(Conf.ORM)

    def enqueue(self, task: Any) -> Any:
        """The task's row and its NOTIFY (delivered at the commit of the caller's transaction,
        if it has one) in one statement."""
        if not _postgres():
            return super().enqueue(task)
        with connections[Conf.ORM].cursor() as cursor:
            cursor.execute(
                'INSERT INTO "django_q_ormq" ("key", "payload", "lock") VALUES (%s, %s, %s) '
                "RETURNING \"id\", pg_notify(%s, '')",
                [self.list_key or Conf.CLUSTER_NAME, task, timezone.now(), TASKS_CHANNEL],
            )
            return cursor.fetchone()[0]

    def delete(self, task_id: Any) -> None:
        """One DELETE (the stock broker's collects relations first, in a transaction)."""
        if not _postgres():
            super().delete(task_id)
            return
        with connections[Conf.ORM].cursor() as cursor:
            cursor.execute('DELETE FROM "django_q_ormq" WHERE "id" = %s', [task_id])

    _wait_first = False
    _more_due = False

    def dequeue(self) -> list[tuple[Any, Any]] | None:
        """The tasks taken (locked until their retry time), or None after waiting for one.
        After a look that found every due task, the next call waits for a notice before it
        looks: the notices of the tasks that look took are dropped first, so a task
        costs one look, not a look that finds it and another that finds nothing."""
        if self._wait_first:
            self._wait_first = False
            self._wait()
        self._drain()
        taken = self._take()
        if taken is None:
            self._wait()
            return None
        self._wait_first = not self._more_due
        return taken

    def _drain(self) -> None:
        """Drop the notices already received: the look that follows answers them."""
        listener = self._listener if self._listener_pid == os.getpid() else None
        if listener is None:
            return
        try:
            for _ in listener.notifies(timeout=0):
                pass
        except Exception:  # the connection broke: the next wait connects again
            self._close()

    def _take(self) -> list[tuple[Any, Any]] | None:
        """Lock up to ``bulk`` due tasks of this queue for this cluster; None when there are
        none (a task another cluster locked first is left to it). A connection found broken
        (the database restarted) is replaced once."""
        try:
            return self._take_once()
        except (InterfaceError, OperationalError):
            if connections[Conf.ORM].in_atomic_block:
                raise
            logger.warning("task broker: the connection broke; connecting again")
            connections[Conf.ORM].close()
            return self._take_once()

    def _take_once(self) -> list[tuple[Any, Any]] | None:
        # One more than a bulk: whether others are due too (then the next call looks at once).
        due = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())
        found = list(due[: Conf.BULK + 1])
        self._more_due = len(found) > Conf.BULK
        found = found[: Conf.BULK]
        if not found:
            return None
        taken = []
        for task in found:
            locked = (
                self.get_connection()
                .filter(id=task.id, lock=task.lock)
                .update(lock=self.timeout(task))
            )
            if locked:
                taken.append((task.pk, task.payload))
        return taken

    def _wait(self) -> None:
        """Until a task is enqueued (a notice) or ``FERRY_Q_WAKE_S`` passed; the stock poll
        pause when NOTIFY is not to be had."""
        if not _postgres():
            sleep(Conf.POLL)
            return
        listener = self._listener if self._listener_pid == os.getpid() else None
        try:
            if listener is None:
                self._listen()
                return  # what was enqueued before the LISTEN: look at the table again now
            for _ in listener.notifies(timeout=float(settings.FERRY_Q_WAKE_S), stop_after=1):
                break
        except Exception:  # the database went away: look again after the stock pause
            logger.warning("task broker: the LISTEN connection failed", exc_info=True)
            self._close()
            sleep(Conf.POLL)

    def _listen(self) -> None:
        import psycopg

        listener = psycopg.Connection.connect(autocommit=True, **listen_conninfo(Conf.ORM))
        listener.execute(f"LISTEN {TASKS_CHANNEL}")
        self._listener, self._listener_pid = listener, os.getpid()

    def _close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and self._listener_pid == os.getpid():
            with contextlib.suppress(Exception):  # already broken: nothing more to do
                listener.close()
