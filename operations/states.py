"""The job state machine: the only place that knows which status may follow which.

Transitions are conditional updates (``filter(pk=…, status=expected).update(…)``); the row
count says whether this caller won the race.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    FINALIZING = "finalizing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE: frozenset[JobStatus] = frozenset(JobStatus) - TERMINAL

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTED, JobStatus.FAILED, JobStatus.CANCELLING}),
    JobStatus.SUBMITTED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLING}),
    JobStatus.RUNNING: frozenset({JobStatus.FINALIZING, JobStatus.FAILED, JobStatus.CANCELLING}),
    # Back to QUEUED: the engine restarted under the run and its operation is safe to retry
    # (operations.runner runs it again from the start, through the usual idempotent submit).
    JobStatus.FINALIZING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLING, JobStatus.QUEUED}
    ),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus | str, new: JobStatus | str) -> bool:
    return JobStatus(new) in ALLOWED[JobStatus(current)]
