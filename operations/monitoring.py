"""What operators see of the worker and the executors: heartbeats, per-executor poll health and
running totals (written by the worker), and what /readyz, /metrics and GET /api/executors/ read.

The worker runs in other processes (often on other hosts) than the web app, so everything the
worker observes is kept in the database, not in process memory: the web app reads it at scrape
time with a handful of small, indexed queries. Totals are added with one UPDATE ... SET value =
value + x, so any number of worker processes can add to them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, models
from django.db.models import Count, F, Min, Sum
from django.utils import timezone

from api.models import File
from executors.base import ExecutorError, Observation
from executors.registry import get_executor

from . import leases
from .models import (
    CROMWELL_ALIAS_PREFIX,
    CromwellServer,
    ExecutorHealth,
    Job,
    WorkerCounter,
    WorkerHeartbeat,
)
from .states import JobStatus

logger = logging.getLogger(__name__)

RELOCATION_BYTES = "relocation_bytes"
RELOCATION_SECONDS = "relocation_seconds"
RELOCATIONS = "relocations"


# ----------------------------------------------------------------------------- worker heartbeat


def beat(holder: str) -> None:
    """Record that worker ``holder`` is alive now."""
    WorkerHeartbeat.objects.update_or_create(holder=holder, defaults={"beat_at": timezone.now()})


def heartbeat_loop(stop: threading.Event, holder: str | None = None) -> None:
    """Run by each worker process in a thread: beat every FERRY_WORKER_HEARTBEAT_S; drop the
    beats of workers silent for a day."""
    holder = holder or leases.new_holder()
    try:
        while True:
            try:
                beat(holder)
                WorkerHeartbeat.objects.filter(
                    beat_at__lt=timezone.now() - timedelta(days=1)
                ).delete()
            except Exception:  # the database is away for a moment: beat on the next round
                logger.warning("worker heartbeat: could not write", exc_info=True)
                connection.close()
            if stop.wait(settings.FERRY_WORKER_HEARTBEAT_S):
                return
    finally:
        connection.close()


def newest_heartbeat() -> datetime | None:
    newest: datetime | None = WorkerHeartbeat.objects.aggregate(newest=models.Max("beat_at"))[
        "newest"
    ]
    return newest


# --------------------------------------------------------------------- what the worker observes


def _add(model: type[models.Model], key: dict[str, Any], **amounts: Any) -> None:
    """Add ``amounts`` to a row's totals (created at zero on first use); safe across processes."""
    changes = {name: F(name) + amount for name, amount in amounts.items()}
    if model._default_manager.filter(**key).update(**changes):
        return
    model._default_manager.get_or_create(**key)
    model._default_manager.filter(**key).update(**changes)


def record_poll(
    alias: str,
    seconds: float,
    error: Exception | None = None,
    *,
    jobs: Sequence[Any] = (),
    observations: Mapping[Any, Observation] | None = None,
) -> None:
    """One poll of executor ``alias`` took ``seconds``; ``error`` is what it raised, if any;
    ``observations`` what it said of ``jobs`` (loaded with their ``observed_state``). Never
    raises: the poll goes on without it."""
    try:
        _record_poll(alias, seconds, error)
        if observations is not None:
            record_observed(jobs, observations)
    except DatabaseError:
        logger.warning("poll: could not record the poll of %s", alias, exc_info=True)


@dataclass
class _PollsHeld:
    """Successful polls of one executor not written yet (see ``_record_poll``)."""

    polls: int = 0
    seconds: float = 0.0
    last_seconds: float = 0.0
    last_at: datetime | None = None
    written_at: float = float("-inf")  # time.monotonic() of the last write
    healthy: bool | None = None  # as last written


_held_polls: dict[str, _PollsHeld] = {}
_held_lock = threading.Lock()


def _record_poll(alias: str, seconds: float, error: Exception | None) -> None:
    """Count the poll. Written in one UPDATE (the totals and the last poll's figures
    together) at once when it fails or its health changes, else at most every
    FERRY_POLL_RECORD_EVERY_S: exit events wake the loop many times a second under load, and
    a row written per pass was a share of a trivial job's database work."""
    now_mono = time.monotonic()
    with _held_lock:
        held = _held_polls.setdefault(alias, _PollsHeld())
        held.polls += 1
        held.seconds += seconds
        held.last_seconds = seconds
        held.last_at = timezone.now()
        due = (
            error is not None
            or held.healthy is not True
            or now_mono - held.written_at >= settings.FERRY_POLL_RECORD_EVERY_S
        )
        if not due:
            return
        _held_polls[alias] = _PollsHeld(written_at=now_mono, healthy=error is None)
    _write_polls(alias, held, error)


def flush_polls() -> None:
    """Write the polls held back (the poll loop ends; never raises)."""
    with _held_lock:
        pending = {alias: held for alias, held in _held_polls.items() if held.polls}
        for alias, held in pending.items():
            _held_polls[alias] = _PollsHeld(written_at=held.written_at, healthy=held.healthy)
    for alias, held in pending.items():
        try:
            _write_polls(alias, held, None)
        except DatabaseError:
            logger.warning("poll: could not record the polls of %s", alias, exc_info=True)


def _write_polls(alias: str, held: _PollsHeld, error: Exception | None) -> None:
    now = held.last_at or timezone.now()
    fields: dict[str, Any] = {
        "polls_total": F("polls_total") + held.polls,
        "poll_seconds_total": F("poll_seconds_total") + held.seconds,
        "last_polled_at": now,
        "last_poll_seconds": held.last_seconds,
        "healthy": error is None,
    }
    if error is not None:
        fields.update(
            errors_total=F("errors_total") + 1, last_error=str(error)[:2000], last_error_at=now
        )
    if ExecutorHealth.objects.filter(alias=alias).update(**fields):
        return
    ExecutorHealth.objects.get_or_create(alias=alias)
    ExecutorHealth.objects.filter(alias=alias).update(**fields)


def record_observed(jobs: Iterable[Any], observations: Mapping[Any, Observation]) -> None:
    """Keep each job's last observed executor state, writing only the jobs whose state changed
    (compared with what the poll loaded: a Job or the poll's runner.PolledJob, with ``pk`` and
    ``observed_state``): a poll of 10,000 running jobs writes nothing."""
    changed: dict[str, list[Any]] = {}
    for job in jobs:
        observation = observations.get(job.pk)
        state = observation.state.value if observation is not None else "missing"
        if job.observed_state != state:
            changed.setdefault(state, []).append(job.pk)
            job.observed_state = state
    now = timezone.now()
    for state, job_ids in changed.items():
        Job.objects.filter(pk__in=job_ids).update(observed_state=state, observed_at=now)


def record_relocation(job: Job, seconds: float) -> None:
    """The job's result files were stored in their destination in ``seconds``. Never raises:
    the finalize goes on without it."""
    try:
        size = File.objects.filter(produced_by=job).aggregate(n=Sum("size"))["n"] or 0
        for name, amount in ((RELOCATION_BYTES, size), (RELOCATION_SECONDS, seconds)):
            _add(WorkerCounter, {"name": name}, value=amount)
        _add(WorkerCounter, {"name": RELOCATIONS}, value=1)
    except DatabaseError:
        logger.warning("finalize: could not record the relocation", exc_info=True)


# ---------------------------------------------------------------------------------- the readers


def check_worker() -> str:
    """ "ok", or what is wrong with the worker's heartbeat."""
    newest = newest_heartbeat()
    if newest is None:
        return "no worker has ever reported"
    age = (timezone.now() - newest).total_seconds()
    if age > settings.FERRY_WORKER_STALE_S:
        return f"stale: the newest worker heartbeat is {age:.0f} s old"
    return "ok"


def local_engine_aliases() -> list[str]:
    """The configured executors that run on a Docker engine (they can be pinged)."""
    aliases = []
    for alias in settings.EXECUTORS:
        try:
            if callable(getattr(get_executor(alias), "ping", None)):
                aliases.append(alias)
        except ExecutorError:
            continue
    return aliases


def check_engine(alias: str) -> str:
    try:
        get_executor(alias).ping()  # type: ignore[attr-defined]
    except ExecutorError as exc:
        return f"unreachable: {exc}"
    return "ok"


def check_cromwell_servers() -> dict[str, str]:
    """Each Cromwell server that takes or runs jobs, asked now."""
    from .cromwell_servers import server_check

    checks = {}
    for server in CromwellServer.objects.select_related("credential"):
        checked = server_check(server)
        checks[f"{CROMWELL_ALIAS_PREFIX}{server.name}"] = (
            "ok" if checked.healthy else f"unhealthy: {checked.health_message}"
        )
    return checks


def readiness_checks() -> dict[str, str]:
    """The worker and each Docker engine: "ok" or what is wrong (Ferry can't run jobs)."""
    checks = {"worker": check_worker()}
    for alias in local_engine_aliases():
        checks[f"executor:{alias}"] = check_engine(alias)
    return checks


def queue_position(job: Job) -> int | None:
    """1 for the oldest QUEUED job; None when the job isn't queued."""
    if job.status != JobStatus.QUEUED:
        return None
    return Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=job.created_at).count() + 1


def job_executor_state(job: Job) -> dict[str, Any]:
    """What staff see of a job's run on its executor."""
    health = ExecutorHealth.objects.filter(alias=job.executor).first()
    return {
        "observed_state": job.observed_state,
        "observed_at": job.observed_at,
        "last_polled_at": health.last_polled_at if health else None,
        "last_error": health.last_error if health else "",
        "last_error_at": health.last_error_at if health else None,
        "queue_position": queue_position(job),
    }


@dataclass
class ExecutorView:
    alias: str
    healthy: bool | None
    active_jobs: int
    last_polled_at: datetime | None
    last_error: str
    last_error_at: datetime | None


def executors_overview() -> list[ExecutorView]:
    """Every configured or registered executor, and any that still has active jobs."""
    active = dict(
        Job.objects.active()
        .values_list("executor")
        .annotate(n=Count("id"))
        .values_list("executor", "n")
    )
    health = {h.alias: h for h in ExecutorHealth.objects.all()}
    aliases = set(settings.EXECUTORS) | set(active) | set(health)
    aliases |= {
        f"{CROMWELL_ALIAS_PREFIX}{name}"
        for name in CromwellServer.objects.values_list("name", flat=True)
    }
    aliases.discard("")
    views = []
    for alias in sorted(aliases):
        h = health.get(alias)
        views.append(
            ExecutorView(
                alias=alias,
                healthy=h.healthy if h else None,
                active_jobs=active.get(alias, 0),
                last_polled_at=h.last_polled_at if h else None,
                last_error=h.last_error if h else "",
                last_error_at=h.last_error_at if h else None,
            )
        )
    return views


def job_counts() -> list[tuple[str, str, int]]:
    """(status, executor, count) of every job (the (status, executor) index answers it)."""
    rows = Job.objects.order_by().values_list("status", "executor").annotate(n=Count("id"))
    return [(status, executor, n) for status, executor, n in rows]


def queue_depth() -> tuple[int, datetime | None]:
    """How many jobs are QUEUED, and when the oldest of them was created."""
    row = Job.objects.filter(status=JobStatus.QUEUED).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    return row["n"], row["oldest"]


def worker_totals() -> dict[str, float]:
    return dict(WorkerCounter.objects.values_list("name", "value"))
