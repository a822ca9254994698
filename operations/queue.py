"""Enqueueing worker tasks (django-q2). Callers use these after commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

# The poll loop's process submits the new jobs of executors that wait for exits itself while
# it runs (operations.runner.LoopSubmits), woken by this channel: no task through the queue.
SUBMITS_CHANNEL = "ferry_submits"
POLL_LEASE = "poll-active"


def enqueue_submit(job_id: Any, *, executor: str | None = None) -> None:
    """Have the job submitted: by the poll loop when one runs and ``executor`` (the job's) is
    an engine it waits on (a notice wakes it), else by a task, and a poll loop started."""
    if executor is not None and _the_poll_loop_submits(executor):
        return
    async_task("operations.runner.submit_job", str(job_id), task_name=f"submit-{job_id}")
    kick_poller()


def loop_submits_possible() -> bool:
    """Whether a poll loop may submit jobs itself: tasks go through a worker (not inline) and
    the database can send it notices (PostgreSQL)."""
    return not settings.Q_CLUSTER.get("sync") and connection.vendor == "postgresql"


def _the_poll_loop_submits(alias: str) -> bool:
    from executors.base import ExecutorError
    from executors.registry import get_executor

    from . import leases

    if not loop_submits_possible():
        return False
    if alias not in settings.EXECUTORS:  # (a registered Cromwell server: no events to wait on)
        return False
    try:
        if not get_executor(alias).waits_for_exits:
            return False
    except ExecutorError:
        return False
    # The notice goes with the look at the poll lease, in one statement, when it is held: one
    # round trip (this runs in every POST /api/jobs/). A holder found dead had a needless notice.
    with connection.cursor() as cursor:
        cursor.execute(_NOTIFY_IF_POLLING, [SUBMITS_CHANNEL, POLL_LEASE, timezone.now()])
        row = cursor.fetchone()
    return row is not None and not leases.holder_is_dead(row[0])


_NOTIFY_IF_POLLING = (
    "SELECT holder, pg_notify(%s, '') FROM operations_lease "
    "WHERE name = %s AND holder <> '' AND expires_at > %s"
)


def enqueue_cancel(job_id: Any) -> None:
    async_task("operations.runner.cancel_job", str(job_id), task_name=f"cancel-{job_id}")


def enqueue_finalize(job_id: Any) -> None:
    async_task("operations.runner.finalize_job", str(job_id), task_name=f"finalize-{job_id}")


def enqueue_cleanup(job_id: Any) -> None:
    async_task("operations.runner.cleanup_job", str(job_id), task_name=f"cleanup-{job_id}")


def kick_poller() -> None:
    """Start a poll loop now, unless one is running (its lease is held): that one will see the
    new work on its next cycle. An expired lease, or a dead process's on this
    host, doesn't count."""
    from . import leases

    if leases.is_held(POLL_LEASE):
        return
    async_task("operations.runner.poll_active", task_name="poll-active")
