"""The only code that writes ``Job.status``: conditional updates plus an Event, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.events import record_event

from .models import Job
from .states import TERMINAL, JobStatus, can_transition

# Timestamps set when a job enters a status.
_STAMPS = {
    JobStatus.SUBMITTED: "submitted_at",
    JobStatus.RUNNING: "started_at",
    JobStatus.SUCCEEDED: "finished_at",
    JobStatus.FAILED: "finished_at",
    JobStatus.CANCELLED: "finished_at",
}


class TransitionNotAllowed(ValueError):
    pass


def transition(
    job: Job,
    to: JobStatus,
    *,
    expected: JobStatus | None = None,
    along: Callable[[], None] | None = None,
    through: JobStatus | None = None,
    **fields: Any,
) -> bool:
    """Move ``job`` from ``expected`` (default: its current status) to ``to``; ``along`` runs
    in the same transaction when the move wins (e.g. publishing the job's results).
    ``through``: a status passed on the way, in the same transaction (one UPDATE, an event
    for each step: e.g. a run first seen when it had already exited goes SUBMITTED ->
    RUNNING -> FINALIZING, its history the same as when it was seen running first).

    Returns False when another worker changed the job first (nothing is written then).
    ``job`` is updated in place on success.
    """
    current = JobStatus(expected or job.status)
    steps = [(current, to)] if through is None else [(current, through), (through, to)]
    for start, end in steps:
        if not can_transition(start, end):
            raise TransitionNotAllowed(f"a job cannot go from {start} to {end}")
    values = _values(steps, fields)
    with transaction.atomic():
        won = Job.objects.filter(pk=job.pk, status=current.value).update(**values) == 1
        if won:
            if along is not None:
                along()
            for start, end in steps:  # last: they hold the event writers' lock until the commit
                record_event(
                    workspace_id=job.workspace_id,
                    job_id=job.pk,
                    kind="job.status",
                    payload=_payload(job, start, end, fields if end == to else {}),
                )
    if won:
        for key, value in values.items():
            setattr(job, key, value)
    return won


def _values(steps: list[tuple[JobStatus, JobStatus]], fields: dict[str, Any]) -> dict[str, Any]:
    """The columns the move writes: the new status, the stamps of the statuses entered."""
    to = steps[-1][1]
    now = timezone.now()
    values: dict[str, Any] = {"status": to.value, "updated_at": now, **fields}
    for _, end in steps:
        if end in _STAMPS:
            values.setdefault(_STAMPS[end], now)
    if "error_detail" in fields or to in TERMINAL:  # a new detail replaces an unreachable notice
        values.setdefault("executor_unreachable_since", None)
        values.setdefault("executor_unreachable_what", "")
    return values


def _payload(job: Job, current: JobStatus, to: JobStatus, fields: dict[str, Any]) -> dict[str, Any]:
    """What a client hears of the move: a finished job's outputs or error come with it."""
    payload: dict[str, Any] = {
        "job": str(job.pk),
        "from": current.value,
        "to": to.value,
        "terminal": to in TERMINAL,
    }
    if "outputs" in fields:
        payload["outputs"] = fields["outputs"]
    if fields.get("error_message"):
        payload["error_message"] = fields["error_message"]
    return payload
