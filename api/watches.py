"""Who is watching what: the leases open event streams keep in the database (StreamWatch), so
that the worker (another process, often another host) can poll watched jobs' executors more
often. Written by the stream's server process (api.event_stream), read by the poll loop.

A stream on a job watches that job; on a workspace, that workspace's jobs; one without either,
the workspaces its user belongs to (up to ``FERRY_WATCH_MAX_WORKSPACES``; staff without a
filter watch nothing in particular: they see every workspace).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import StreamWatch


def watch_ttl() -> timedelta:
    return timedelta(seconds=float(settings.FERRY_WATCH_TTL_S))


@dataclass(frozen=True)
class WatchScope:
    """What one stream watches."""

    workspaces: tuple[str, ...] = ()
    job: str | None = None

    @classmethod
    def of_stream(
        cls, *, workspace: str | None, job: str | None, visible: Iterable[str] | None
    ) -> WatchScope:
        if job is not None:
            return cls(job=job)
        if workspace is not None:
            return cls(workspaces=(workspace,))
        if visible is None:  # staff: every workspace
            return cls()
        return cls(workspaces=tuple(sorted(visible))[: int(settings.FERRY_WATCH_MAX_WORKSPACES)])


def open_watch(scope: WatchScope) -> list[int]:
    """Record the stream's watch; the ids of its rows (renewed and deleted by these ids)."""
    expires_at = timezone.now() + watch_ttl()
    rows = [StreamWatch(workspace_id=w, expires_at=expires_at) for w in scope.workspaces]
    if scope.job is not None:
        rows.append(StreamWatch(job_id=scope.job, expires_at=expires_at))
    if not rows:
        return []
    return [row.pk for row in StreamWatch.objects.bulk_create(rows)]


def renew_watches(ids: Sequence[int]) -> None:
    """The streams holding these rows are still open (one UPDATE for every stream of a
    process, every ``FERRY_WATCH_RENEW_S``)."""
    if not ids:
        return
    expires_at = timezone.now() + watch_ttl()
    StreamWatch.objects.filter(pk__in=ids).update(expires_at=expires_at)


def close_watch(ids: Sequence[int]) -> None:
    if ids:
        StreamWatch.objects.filter(pk__in=ids).delete()


def watched_now(*, remove_expired: bool = True) -> tuple[set[Any], set[Any]]:
    """(workspace ids, job ids) someone is watching now (leases that expired watch nothing);
    with ``remove_expired``, those leases are deleted too."""
    now = timezone.now()
    if remove_expired:
        StreamWatch.objects.filter(expires_at__lte=now).delete()
    workspaces: set[Any] = set()
    jobs: set[Any] = set()
    # Many streams may watch the same things: each pair once.
    watched = (
        StreamWatch.objects.filter(expires_at__gt=now)
        .order_by()
        .values_list("workspace_id", "job_id")
        .distinct()
    )
    for workspace_id, job_id in watched:
        if job_id is not None:
            jobs.add(job_id)
        elif workspace_id is not None:
            workspaces.add(workspace_id)
    return workspaces, jobs
