"""The File state machine and the only code that changes ``File.status``.

Like the job's (``operations.states`` + ``operations.transitions``): a table of which status may
follow which, and one writer that moves a file with a conditional UPDATE
(``filter(pk=…, status=expected).update(…)``) whose row count says whether this caller won, and
records an Event (``file.status``) in the same transaction. Creating a File with its first status is not a
transition, but a file created ready or invalid gets its Event too (``file_created``), so every
file that becomes ready or invalid has exactly one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from .events import record_event
from .models import File, FileStatus

FILE_TRANSITIONS: dict[FileStatus, frozenset[FileStatus]] = {
    # A direct upload completes and passes its checks, or a job's result is published with
    # the job's success (its check's verdict, waiting in invalid_reason, decides which).
    FileStatus.PENDING: frozenset({FileStatus.READY, FileStatus.INVALID}),
    FileStatus.READY: frozenset(),
    FileStatus.INVALID: frozenset(),
}
FILE_TERMINAL: frozenset[FileStatus] = frozenset(
    status for status, following in FILE_TRANSITIONS.items() if not following
)


class FileTransitionNotAllowed(ValueError):
    pass


def file_can_transition(current: FileStatus | str, new: FileStatus | str) -> bool:
    return FileStatus(new) in FILE_TRANSITIONS[FileStatus(current)]


def file_transition(
    file: File,
    to: FileStatus,
    *,
    expected: FileStatus | None = None,
    along: Callable[[], None] | None = None,
    **fields: Any,
) -> bool:
    """Move ``file`` from ``expected`` (default: its current status) to ``to``, setting
    ``fields`` too; ``along`` runs in the same transaction when the move wins.

    Returns False when another caller changed (or removed) the file first; nothing is written
    then. ``file`` is updated in place on success.
    """
    current = FileStatus(expected or file.status)
    to = FileStatus(to)
    if not file_can_transition(current, to):
        raise FileTransitionNotAllowed(f"a file cannot go from {current} to {to}")
    values: dict[str, Any] = {"status": to.value, "updated_at": timezone.now(), **fields}
    with transaction.atomic():
        won = File.objects.filter(pk=file.pk, status=current.value).update(**values) == 1
        if won:
            if along is not None:
                along()
            _record(file, current, to, values.get("invalid_reason", file.invalid_reason))
    if won:
        for key, value in values.items():
            setattr(file, key, value)
    return won


def file_created(file: File) -> None:
    """Record the Event of a file created in a final status (ready or invalid); call it in the
    transaction that creates the file. A pending file's Event comes with its transition."""
    if FileStatus(file.status) in FILE_TERMINAL:
        _record(file, None, FileStatus(file.status), file.invalid_reason)


def _record(file: File, current: FileStatus | None, to: FileStatus, invalid_reason: str) -> None:
    record_event(
        workspace_id=file.workspace_id,
        file_id=file.pk,
        kind="file.status",
        payload={
            "file": str(file.pk),
            "from": current.value if current is not None else None,
            "to": to.value,
            "terminal": to in FILE_TERMINAL,
            "invalid_reason": invalid_reason,
        },
    )
