"""Enqueueing worker tasks (django-q2). Callers use these after commit."""

from __future__ import annotations

from typing import Any

from django_q.tasks import async_task


def enqueue_submit(job_id: Any) -> None:
    async_task("operations.runner.submit_job", str(job_id), task_name=f"submit-{job_id}")
    kick_poller()


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

    if leases.is_held("poll-active"):
        return
    async_task("operations.runner.poll_active", task_name="poll-active")
