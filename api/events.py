"""The event log: the one writer of Event rows, and what the stream reads back.

Every visible change (a job's status or notice, a file becoming ready or invalid, a membership)
records an Event in the transaction of the change, through :func:`record_event` only. On
PostgreSQL it takes a transaction-level advisory lock before the insert, so event-writing
transactions commit in the order of their ids: a reader that has seen id N can never later
find a committed id below N (no event is skipped by a cursor), and it sends NOTIFY, which
PostgreSQL delivers at commit (never for a rolled-back change). SQLite serializes its writers
anyway; its readers poll.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import Event, User
from .selectors import workspaces_visible_to

NOTIFY_CHANNEL = "ferry_events"
_WRITERS_LOCK = 0x6665727279  # "ferry": the advisory lock serializing event commits
_STREAM_SIGNING_NAMESPACE = "ferry.events.stream"


def stream_token_seconds() -> int:
    return int(getattr(settings, "FERRY_EVENTS_TOKEN_SECONDS", 60))


def record_event(
    *,
    kind: str,
    payload: dict[str, Any],
    workspace_id: Any,
    job_id: Any = None,
    file_id: Any = None,
) -> Event:
    """Append one Event in the current transaction (call it as the change's last write: the
    writers' lock is held from here to the commit). Inside the caller's transaction it adds
    no savepoint of its own: an error here undoes the whole change anyway."""
    if connection.vendor == "postgresql":
        return _insert_locked_and_notified(
            workspace_id=workspace_id, job_id=job_id, file_id=file_id, kind=kind, payload=payload
        )
    with transaction.atomic(savepoint=False):
        event = Event.objects.create(
            workspace_id=workspace_id, job_id=job_id, file_id=file_id, kind=kind, payload=payload
        )
    return event


# One statement: the writers' lock (from the FROM, taken before the row's id is drawn), the
# row, and the NOTIFY (delivered at commit) — a job's life writes five or six events, and three
# statements each were a large share of its database work. The notice is the event itself
# (see notice_text), so a stream's hub needs no read of the table for it.
_INSERT_EVENT = (
    'INSERT INTO "api_event" '
    '("workspace_id", "job_id", "file_id", "kind", "payload", "created_at") '
    "SELECT %s, %s, %s, %s, %s::jsonb, %s FROM pg_advisory_xact_lock(%s) "
    "RETURNING id, pg_notify(%s, id::text || %s)"
)
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more: a larger event's notice is its id
# alone, and the hub reads it from the table.
NOTICE_MAX_BYTES = 7000


def notice_text(fields: dict[str, Any]) -> str:
    """What follows the id in an event's notice: a space and the event's fields but its id
    (as :func:`event_fields` gives them), or nothing when that would be too long."""
    text = " " + json.dumps(fields, separators=(",", ":"))
    return text if len(text.encode()) <= NOTICE_MAX_BYTES else ""


def event_of_notice(text: str) -> tuple[int | None, dict[str, Any] | None]:
    """The id of the event a notice tells of, and the event (as :func:`event_fields` gives it)
    when the notice carries it; (None, None) for a notice that isn't one of ours."""
    head, _, body = text.partition(" ")
    try:
        event_id = int(head)
    except ValueError:
        return None, None
    if not body:
        return event_id, None
    try:
        fields = json.loads(body)
    except ValueError:
        return event_id, None
    if not isinstance(fields, dict):
        return event_id, None
    return event_id, {"id": event_id, **fields}


def _insert_locked_and_notified(
    *, workspace_id: Any, job_id: Any, file_id: Any, kind: str, payload: dict[str, Any]
) -> Event:
    event = Event(
        workspace_id=_uuid_or_none(workspace_id),
        job_id=_uuid_or_none(job_id),
        file_id=_uuid_or_none(file_id),
        kind=kind,
        payload=payload,
        created_at=timezone.now(),
    )
    fields = event_fields(event)
    del fields["id"]  # (drawn by the insert)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            _INSERT_EVENT,
            [
                event.workspace_id,
                event.job_id,
                event.file_id,
                kind,
                json.dumps(payload),
                event.created_at,
                _WRITERS_LOCK,
                NOTIFY_CHANNEL,
                notice_text(fields),
            ],
        )
        (event.id, _) = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias
    return event


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    return (
        None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    )


def record_membership(*, workspace_id: Any, user_id: Any, role: str | None) -> Event:
    """A member added, changed role (``role``) or removed (``role`` None)."""
    return record_event(
        kind="membership.changed",
        workspace_id=workspace_id,
        payload={
            "workspace": str(workspace_id),
            "user": str(user_id),
            "role": None if role is None else str(role),
        },
    )


# ------------------------------------------------------------------------------------- reading


def latest_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def event_fields(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "kind": event.kind,
        "workspace": str(event.workspace_id) if event.workspace_id else None,
        "job": str(event.job_id) if event.job_id else None,
        "file": str(event.file_id) if event.file_id else None,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def events_after(after: int, *, limit: int = 500) -> list[dict[str, Any]]:
    """Every event with an id above ``after`` (all workspaces), oldest first."""
    return [event_fields(e) for e in Event.objects.filter(id__gt=after).order_by("id")[:limit]]


def visible_workspace_ids(user: User) -> set[str] | None:
    """The ids of the workspaces whose events ``user`` may see; None: every workspace (staff)."""
    if user.is_staff:
        return None
    return {str(pk) for pk in workspaces_visible_to(user).values_list("pk", flat=True)}


def may_see(event: dict[str, Any], user_id: str, workspaces: set[str] | None) -> bool:
    if workspaces is None:
        return True
    if event["kind"] == "membership.changed" and event["payload"].get("user") == user_id:
        return True  # the member hears of their own change, removal included
    return event["workspace"] in workspaces


def visible_events_after(
    after: int, *, user: User, workspaces: set[str] | None, limit: int = 500
) -> list[dict[str, Any]]:
    """Catch-up for one stream: the events above ``after`` that ``user`` may see."""
    rows = Event.objects.filter(id__gt=after).order_by("id")
    if workspaces is not None:
        rows = rows.filter(
            Q(workspace_id__in=[uuid.UUID(w) for w in workspaces])
            | Q(kind="membership.changed", payload__user=str(user.pk))
        )
    return [event_fields(e) for e in rows[:limit]]


# -------------------------------------------------------------------------------- stream token


def stream_token_for(user: User) -> str:
    """A token that opens the event stream as ``user`` for a minute: nothing else."""
    return signing.dumps({"user": str(user.pk)}, salt=_STREAM_SIGNING_NAMESPACE, compress=True)


def user_of_stream_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt=_STREAM_SIGNING_NAMESPACE, max_age=stream_token_seconds())
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    return User.objects.filter(pk=data.get("user"), is_active=True).first()
