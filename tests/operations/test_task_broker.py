"""The task queue's idle pusher waits for a NOTIFY instead of looking at the queue table every
poll (issue 14, P1: the stock ORM broker's looks were a large share of the worker's CPU): an
idle pusher looks rarely, and a task enqueued meanwhile is taken at once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.brokers import get_broker
from django_q.models import OrmQ

pytestmark = pytest.mark.django_db(transaction=True)


def _looks(queries: CaptureQueriesContext) -> int:
    return sum(
        1
        for q in queries.captured_queries
        if str(q["sql"]).startswith("SELECT") and '"django_q_ormq"' in str(q["sql"])
    )


def _pull(broker: Any, until: float) -> tuple[list[Any], float]:
    """Call dequeue as the pusher does until it returns tasks or ``until`` passes."""
    while time.monotonic() < until:
        taken = broker.dequeue()
        if taken:
            return taken, time.monotonic()
    return [], time.monotonic()


@pytest.fixture
def listening(settings: Any) -> Iterator[Any]:
    """A broker of its own queue whose pusher listens (looks on its own every 30 s only)."""
    settings.FERRY_Q_WAKE_S = 30.0
    broker = get_broker(f"test-{uuid.uuid4().hex[:8]}")
    try:
        broker.dequeue()  # starts listening
        yield broker
    finally:
        OrmQ.objects.filter(key=broker.list_key).delete()
        broker._close()


def test_an_idle_pusher_looks_rarely_and_takes_a_task_as_soon_as_it_is_queued(
    listening: Any,
) -> None:
    broker = listening
    with CaptureQueriesContext(connection) as idle:
        taken, _ = _pull(broker, time.monotonic() + 1.5)
    assert taken == []
    assert _looks(idle) <= 2, _looks(idle)  # the stock broker: one every poll (0.1 s)

    sent: list[float] = []

    def enqueue_later() -> None:
        time.sleep(0.5)
        sent.append(time.monotonic())
        get_broker(broker.list_key).enqueue("payload")
        connection.close()

    sender = threading.Thread(target=enqueue_later)
    sender.start()
    try:
        taken, at = _pull(broker, time.monotonic() + 20)
    finally:
        sender.join(timeout=10)
    assert [payload for _, payload in taken] == ["payload"]
    assert at - sent[0] < 5.0, at - sent[0]  # woken, not found by the 30 s look


def test_enqueueing_keeps_the_callers_connection() -> None:
    """The stock broker closed "old" connections before each enqueue: a web worker's
    request-scoped connection (CONN_MAX_AGE=0 under the pool) was dropped mid-request and a
    new one taken for the enqueue and its NOTIFY."""
    broker = get_broker(f"test-{uuid.uuid4().hex[:8]}")
    try:
        connection.ensure_connection()
        raw = connection.connection
        connection.close_at = time.monotonic() - 1  # as a request's connection is
        broker.enqueue("payload")
        assert connection.connection is raw
        assert OrmQ.objects.filter(key=broker.list_key).count() == 1
    finally:
        OrmQ.objects.filter(key=broker.list_key).delete()


def test_a_pusher_whose_connection_was_killed_takes_the_next_task() -> None:
    broker = get_broker(f"test-{uuid.uuid4().hex[:8]}")
    try:
        get_broker(broker.list_key).enqueue("payload")
        connection.ensure_connection()
        with connection.connection.cursor() as raw:  # as a database restart would
            pid = raw.execute("SELECT pg_backend_pid()").fetchone()[0]
        from django.db import connections

        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            other.close()
        taken, _ = _pull(broker, time.monotonic() + 20)
        assert [payload for _, payload in taken] == ["payload"]
    finally:
        OrmQ.objects.filter(key=broker.list_key).delete()
        broker._close()


def _enqueue_later(list_key: str, delay: float) -> threading.Thread:
    def send() -> None:
        time.sleep(delay)
        get_broker(list_key).enqueue("payload")
        connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    return sender


def test_a_task_costs_the_pusher_one_look(listening: Any) -> None:
    """After a look that took a task the pusher waits for the next notice before looking
    again (it looked once more, finding nothing, before)."""
    broker = listening
    first = _enqueue_later(broker.list_key, 0.3)
    taken, _ = _pull(broker, time.monotonic() + 20)
    first.join(timeout=10)
    assert len(taken) == 1
    second = _enqueue_later(broker.list_key, 0.5)
    with CaptureQueriesContext(connection) as looks:
        taken, _ = _pull(broker, time.monotonic() + 20)
    second.join(timeout=10)
    assert len(taken) == 1
    assert _looks(looks) == 1, [str(q["sql"])[:80] for q in looks.captured_queries]
    statements = [str(q["sql"]) for q in looks.captured_queries]
    assert len(statements) == 2, statements  # the look, and the lock of the task taken


def test_a_task_is_queued_with_its_notice_and_acknowledged_in_one_statement() -> None:
    broker = get_broker(f"test-{uuid.uuid4().hex[:8]}")
    try:
        with CaptureQueriesContext(connection) as queued:
            task_id = broker.enqueue("payload")
        assert len(queued.captured_queries) == 1, queued.captured_queries
        assert "pg_notify" in str(queued.captured_queries[0]["sql"])
        with CaptureQueriesContext(connection) as acknowledged:
            broker.acknowledge(task_id)
        assert len(acknowledged.captured_queries) == 1, acknowledged.captured_queries
        assert not OrmQ.objects.filter(key=broker.list_key).exists()
    finally:
        OrmQ.objects.filter(key=broker.list_key).delete()


def test_tasks_queued_together_are_taken_one_after_the_other_without_waiting(
    listening: Any,
) -> None:
    broker = listening
    for _ in range(3):
        get_broker(broker.list_key).enqueue("payload")
    started = time.monotonic()
    taken: list[Any] = []
    while len(taken) < 3 and time.monotonic() - started < 20:
        taken += broker.dequeue() or []
    assert len(taken) == 3
    assert time.monotonic() - started < 10  # none waited for the 30 s look
