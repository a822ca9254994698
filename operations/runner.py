"""Worker side: submit, poll all active jobs in batches, finalize, cancel, reconcile.

Every step may be interrupted at any line and run again, by this worker or another cluster:
state changes are conditional transitions, submits are idempotent (the job id names the run),
result files get ids derived from the job, and the poll loop holds a lease.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from queue import SimpleQueue
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Count, Q
from django.utils import timezone

from api import storage
from api.exceptions import ApplicationError
from api.selectors import object_of_unreadable_workspace
from api.services import (
    file_discard_results,
    file_publish_results,
    file_register_object,
    file_register_result,
)
from api.storage.buckets import BucketUnavailable
from api.storage.locations import LocationRefused
from api.watches import watched_now
from executors.base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Observation,
    RunState,
)
from executors.registry import get_executor
from wdl.outputs import (
    OutputShapeError,
    Position,
    ResultFile,
    distinct_file_names,
    file_leaves,
    is_file_output,
    path_segment,
    rebuild,
)

from . import leases, monitoring, queue
from .models import Job
from .states import TERMINAL, JobStatus
from .transitions import transition
from .wdl_runs import prepare_wdl_run, remove_staged_inputs
from .webmev import file_type_for, output_resource_type, runs_webmev_style

logger = logging.getLogger(__name__)

POLL_LEASE = queue.POLL_LEASE
LOG_TAIL_CHARS = 64 * 1024
CLEANUP_FOLLOWED_S = 300.0  # the poll loop keeps going this long for a pending cleanup
_PROBED = (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.CANCELLING)


# ------------------------------------------------------------------------------------- submit


def submit_job(job_id: str) -> None:
    """Start the job's run; one worker at a time per job (a lease), so a resubmit by the
    reconciler or a restarted worker can't race a submit still under way."""
    with leases.holding(f"submit:{job_id}") as held:
        if held is None:
            logger.info("submit: job %s is being submitted by another worker", job_id)
            return
        _submit(job_id)


def _submit(job_id: str) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status != JobStatus.QUEUED:
        return
    try:
        executor = get_executor(job.executor)
        fetch_inputs(job)
        prepare_wdl_run(job, executor)
        external_id = executor.submit(job)
    except ApplicationError as exc:  # inputs could not be staged, or the engine refused the run
        if _is_transient(exc):  # a bucket is down for now: try again later
            _mark_unreachable([job.pk], exc, who=STORAGE)
            return
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.QUEUED,
            error_message=f"Could not prepare the run: {exc.message}",
            error_detail=str(exc),
        )
        return
    except OSError as exc:  # e.g. an input could not be written to the work folder
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.QUEUED,
            error_message=f"Could not prepare the run: {exc.strerror or exc}",
            error_detail=repr(exc),
        )
        return
    except ExecutorUnavailable as exc:
        _mark_unreachable([job.pk], exc, who=_engine_name(job.executor))
        return  # stays QUEUED; the reconciler submits it again
    except ExecutorError as exc:
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.QUEUED,
            error_message=f"Could not start: {exc}",
            error_detail=str(exc),
        )
        return
    if not transition(
        job,
        JobStatus.SUBMITTED,
        expected=JobStatus.QUEUED,
        external_id=external_id,
        attempts=job.attempts + 1,
        **ANSWERED,
    ):
        job.refresh_from_db()
        if job.status in (JobStatus.CANCELLING, JobStatus.CANCELLED):
            with contextlib.suppress(ExecutorError):  # a CANCELLING job's abort is retried by
                executor.cancel(job)  # every poll cycle


def fetch_inputs(job: Job) -> None:
    """Download the job's bucket-stored inputs to the local paths its run spec mounts."""
    for mount in job.run_spec.get("mounts", []):
        if mount.get("fetch"):
            storage.localize(mount["fetch"], Path(mount["source"]))


# --------------------------------------------------------------------------------------- poll


STORAGE = "The storage"
# While a job's executor (or the storage) can't be reached, the job keeps its state and shows
# Job.executor_unreachable_since/_what; error_detail (for staff) says why, e.g. "The Docker
# engine is not answering. the Docker engine can't be reached to list runs: the connection was
# refused". All three are cleared when it answers.
ANSWERED: dict[str, Any] = {
    "executor_unreachable_since": None,
    "executor_unreachable_what": "",
    "error_detail": "",
}


def _is_transient(exc: ApplicationError) -> bool:
    """Storage or a bucket that is down (5xx) rather than a request that can never work."""
    return isinstance(exc, BucketUnavailable) or exc.status_code >= 500


def _engine_name(alias: str) -> str:
    """What users are told is not answering for the jobs of executor ``alias``."""
    try:
        return get_executor(alias).engine_name
    except ExecutorError:
        return Executor.engine_name


def _mark_unreachable(job_ids: list[Any], exc: Exception, *, who: str) -> None:
    """Show on the jobs that ``who`` (their executor's engine, or the storage) can't be
    reached; they keep their state. The first time is kept, so the notice says since when."""
    reason = exc.message if isinstance(exc, ApplicationError) else str(exc)
    marked = Job.objects.filter(pk__in=job_ids, executor_unreachable_since__isnull=True).update(
        executor_unreachable_since=timezone.now(),
        executor_unreachable_what=who,
        error_detail=f"{who} is not answering. {reason}",
    )
    if marked:
        logger.warning("%d job(s): %s is not answering: %r", marked, who, exc.__cause__ or exc)


def poll_cycle() -> int:
    """One pass over the active jobs that are due (see :class:`PollSchedule`); returns how many
    remain active."""
    return _poll_cycle()[0]


# Only what polling reads, as plain values: model instances (and the inputs, outputs and run
# specs) of 10,000 jobs cost seconds. A Job is loaded only when something is to be done.
_POLLED_FIELDS = (
    "id",
    "executor",
    "status",
    "workspace_id",
    "executor_unreachable_since",
    "submitted_at",
    "observed_state",
)


@dataclass(eq=False)
class PolledJob:
    """What a poll reads of an active job (a row's few columns): what its executor is asked
    about (an executors.base.RunnableJob); what it says is applied to the Job only when the
    job's status has to change (:func:`_acts_on`)."""

    id: uuid.UUID
    executor: str
    status: str
    workspace_id: Any
    executor_unreachable_since: Any
    submitted_at: Any
    observed_state: str
    _run_spec: dict[str, Any] | None = None

    @property
    def pk(self) -> uuid.UUID:
        return self.id

    @property
    def run_spec(self) -> dict[str, Any]:
        """Not read by polls; loaded when an executor asks for it."""
        if self._run_spec is None:
            found = Job.objects.filter(pk=self.id).values_list("run_spec", flat=True).first()
            self._run_spec = dict(found or {})
        return self._run_spec

    @run_spec.setter
    def run_spec(self, value: dict[str, Any]) -> None:
        self._run_spec = value


def _polled(rows: Any) -> list[PolledJob]:
    return [PolledJob(*row) for row in rows.values_list(*_POLLED_FIELDS)]


@dataclass
class _Sweep:
    """The slow round over one executor's jobs: where it is, and how many jobs it may poll
    now (credit grows with time: all of them every interval)."""

    cursor: uuid.UUID | None = None
    credit: float = 0.0


class PollSchedule:
    """Which active jobs a cycle asks their executors about, so that a cycle's work grows with
    what changed and with pages of the executors' answers, not with the number of active jobs:

    - at once: jobs an engine told of (an exit event), and jobs being cancelled, someone
      watches (an open event stream on the job or its workspace: api.watches) or just
      submitted (for FERRY_POLL_NEW_S), each at most every FERRY_POLL_WATCHED_S;
    - the rest in a round per executor, a page at a time (the executor's ``poll_page``, at most
      FERRY_POLL_PAGE jobs; an executor whose one call lists every run takes them all at once),
      so that each is polled every FERRY_POLL_UNWATCHED_S, or every
      FERRY_POLL_EVENTS_RECONCILE_S for executors that report exits as events (Docker: the
      round only catches what events can't tell, such as a deadline passed).

    Kept in the poll loop's process: a loop that starts elsewhere starts its rounds afresh."""

    def __init__(self) -> None:
        self.sweeps: dict[str, _Sweep] = {}
        self.fast_polled: dict[uuid.UUID, float] = {}  # when each was polled out of its round
        self.last_cycle: float | None = None

    def due(
        self, told: set[uuid.UUID], *, remove_expired: bool = True
    ) -> dict[str, list[PolledJob]]:
        """The jobs to poll now, by executor (``remove_expired``: delete the stream watches
        that expired on the way)."""
        now = time.monotonic()
        elapsed = 0.0 if self.last_cycle is None else now - self.last_cycle
        self.last_cycle = now
        probed = Job.objects.filter(status__in=[s.value for s in _PROBED])
        counts = dict(
            probed.order_by()
            .values_list("executor")
            .annotate(n=Count("id"))
            .values_list("executor", "n")
        )
        batches: dict[str, list[PolledJob]] = defaultdict(list)
        seen: set[uuid.UUID] = set()
        for job in self._fast(probed, told, now, remove_expired=remove_expired):
            batches[job.executor].append(job)
            seen.add(job.pk)
        for alias, count in counts.items():
            for job in self._round(probed, alias, count, elapsed):
                if job.pk not in seen:
                    batches[alias].append(job)
        return batches

    def told(self, told: set[uuid.UUID]) -> dict[str, list[PolledJob]]:
        """Only the jobs in ``told``, by executor (counted as polled out of their rounds)."""
        batches: dict[str, list[PolledJob]] = defaultdict(list)
        if not told:
            return batches
        now = time.monotonic()
        probed = Job.objects.filter(pk__in=told, status__in=[s.value for s in _PROBED])
        for job in _polled(probed):
            batches[job.executor].append(job)
            self.fast_polled[job.pk] = now
        return batches

    def _fast(
        self, probed: Any, told: set[uuid.UUID], now: float, *, remove_expired: bool
    ) -> list[PolledJob]:
        watched_s = float(settings.FERRY_POLL_WATCHED_S)
        self.fast_polled = {k: at for k, at in self.fast_polled.items() if now - at < watched_s}
        workspaces, jobs = watched_now(remove_expired=remove_expired)
        wanted = (
            Q(pk__in=told)
            | Q(status=JobStatus.CANCELLING)  # until its executor confirms the cancel
            | Q(
                status=JobStatus.SUBMITTED,
                submitted_at__gte=timezone.now() - timedelta(seconds=settings.FERRY_POLL_NEW_S),
            )
        )
        if jobs:
            wanted |= Q(pk__in=jobs)
        if workspaces:
            wanted |= Q(workspace_id__in=workspaces)
        recent = set(self.fast_polled) - told
        found = probed.filter(wanted).exclude(pk__in=recent).order_by("submitted_at")
        chosen = _polled(found[: int(settings.FERRY_POLL_PAGE)])
        for job in chosen:
            self.fast_polled[job.pk] = now
        return chosen

    def _round(self, probed: Any, alias: str, count: int, elapsed: float) -> list[PolledJob]:
        """The next page of executor ``alias``'s round, when its credit covers one."""
        interval, page = _round_of(alias, count)
        sweep = self.sweeps.setdefault(alias, _Sweep())
        if interval <= 0:
            sweep.credit = float(count)
        else:
            sweep.credit = min(float(count), sweep.credit + count * elapsed / interval)
        take = min(page, count)
        if take <= 0 or sweep.credit < take:
            return []
        sweep.credit -= take
        ordered = probed.filter(executor=alias).order_by("pk")
        after = ordered if sweep.cursor is None else ordered.filter(pk__gt=sweep.cursor)
        jobs = _polled(after[:take])
        if len(jobs) < take and sweep.cursor is not None:  # the round starts again
            jobs += _polled(ordered.filter(pk__lte=sweep.cursor)[: take - len(jobs)])
        sweep.cursor = jobs[-1].pk if jobs else None
        return jobs


def _round_of(alias: str, count: int) -> tuple[float, int]:
    """(seconds between two polls of a job in its round, jobs per page) of executor ``alias``."""
    try:
        executor = get_executor(alias)
    except ExecutorError:  # polled all at once: the poll reports why it can't
        return float(settings.FERRY_POLL_UNWATCHED_S), count
    if executor.waits_for_exits:
        interval = float(settings.FERRY_POLL_EVENTS_RECONCILE_S)
    else:
        interval = float(settings.FERRY_POLL_UNWATCHED_S)
    page = executor.poll_page()
    return interval, count if page is None else max(1, min(page, int(settings.FERRY_POLL_PAGE)))


_schedule = PollSchedule()


def _poll_cycle(
    told: set[uuid.UUID] | None = None, *, housekeeping: bool = True
) -> tuple[int, set[uuid.UUID]]:
    """One pass over the active jobs that are due (``told``: jobs an engine said changed):
    (how many remain active, the ids of the jobs whose runs were seen ended). Runs seen exiting
    are finalized in the same pass while that takes less than FERRY_INLINE_FINALIZE_S in all
    (each when its results are small); the rest by tasks. ``housekeeping``: reconcile (stale
    jobs) and remove expired stream watches first; the poll loop does that every
    HOUSEKEEPING_EVERY_S, not in each of the passes an exit event wakes it for."""
    if housekeeping:
        reconcile()
    ended = _poll_due(_schedule.due(told or set(), remove_expired=housekeeping))
    return Job.objects.active().count(), ended


def _poll_told(told: set[uuid.UUID]) -> set[uuid.UUID]:
    """A pass for the jobs an engine just told of, and nothing else (the ids seen ended):
    exit events wake the loop many times a second under load, and the rest of the schedule
    (watched and new jobs, rounds, the active count) is kept by the loop's other passes."""
    return _poll_due(_schedule.told(told))


def _poll_due(due: dict[str, list[PolledJob]]) -> set[uuid.UUID]:
    finalize_until = time.monotonic() + settings.FERRY_INLINE_FINALIZE_S
    ended: set[uuid.UUID] = set()
    for alias, jobs in due.items():
        ended |= _poll_executor(alias, jobs, finalize_until)
    return ended


def _poll_executor(alias: str, jobs: list[PolledJob], finalize_until: float) -> set[uuid.UUID]:
    """Poll ``jobs`` of executor ``alias`` and apply what it says; the ids seen ended."""
    started = time.monotonic()
    try:
        executor = get_executor(alias)
        observations = executor.poll(jobs)
    except ExecutorUnavailable as exc:
        monitoring.record_poll(alias, time.monotonic() - started, exc)
        _mark_unreachable([j.pk for j in jobs], exc, who=_engine_name(alias))
        return set()
    except ExecutorError as exc:  # e.g. a Cromwell server record removed meanwhile
        monitoring.record_poll(alias, time.monotonic() - started, exc)
        logger.error("poll: executor %s: %s", alias, exc)
        return set()
    seen = {j.id: observations.get(j.id, Observation(RunState.MISSING)) for j in jobs}
    ended = {k for k, seen_now in seen.items() if seen_now.state in _ENDED}
    acting = [j.id for j in jobs if _acts_on(j.status, seen[j.id])]
    # A job moved on by what was seen records the observation with its move (_advance).
    advancing = {j.id for j in jobs if j.id in acting and _advances(j.status, seen[j.id])}
    monitoring.record_poll(
        alias,
        time.monotonic() - started,
        jobs=[j for j in jobs if j.id not in advancing] if advancing else jobs,
        observations=observations,
    )
    marked = [j.pk for j in jobs if j.executor_unreachable_since is not None]
    if marked:
        Job.objects.filter(pk__in=marked, executor_unreachable_since__isnull=False).update(
            **ANSWERED
        )
    loaded = Job.objects.select_related("operation", "workspace", "owner").in_bulk(acting)
    for job in loaded.values() if acting else ():
        if job.status not in _PROBED:  # another worker moved it meanwhile
            continue
        try:
            # Only an engine that reports exits at once finalizes in this pass (its results
            # are local files); others (Cromwell: bucket outputs) get a finalize task, which
            # collects once instead of twice.
            inline = executor.waits_for_exits and time.monotonic() < finalize_until
            _apply(job, seen[job.pk], executor, finalize_inline=inline)
        except Exception:
            logger.exception("poll: could not apply the observation of job %s", job.pk)
    return ended


_ENDED = (RunState.EXITED, RunState.MISSING)


def _acts_on(status: str, observation: Observation) -> bool:
    """Whether :func:`_apply` changes anything for a job in ``status`` that its executor
    observed so (a running job seen running: nothing, and its Job is never loaded)."""
    if status == JobStatus.CANCELLING or observation.state == RunState.MISSING:
        return True
    if observation.state == RunState.PENDING:
        return False
    return status == JobStatus.SUBMITTED or observation.state == RunState.EXITED


def _advances(status: str, observation: Observation) -> bool:
    """Whether :func:`_advance` moves a job in ``status`` observed so (RUNNING or on)."""
    return status in (JobStatus.SUBMITTED, JobStatus.RUNNING) and observation.state in (
        RunState.RUNNING,
        RunState.EXITED,
    )


def _apply(
    job: Job, observation: Observation, executor: Executor, *, finalize_inline: bool = False
) -> None:
    status = JobStatus(job.status)
    if status == JobStatus.CANCELLING:
        _finish_cancel(job, executor)
        return
    if observation.state == RunState.PENDING:
        return
    if observation.state == RunState.MISSING:
        message = "The job's run disappeared from its executor before it finished"
        transition(
            job,
            JobStatus.FAILED,
            expected=status,
            error_message=(
                f"{message}: {observation.detail}"
                if observation.detail
                else f"{message} (removed outside Ferry?)."
            ),
            error_detail=f"{executor.alias} has no run for job {job.pk}: {observation.detail}",
        )
        return
    if _advance(job, status, observation) != JobStatus.FINALIZING:
        return
    if not (finalize_inline and finalize_small_job(job)):
        queue.enqueue_finalize(job.pk)


def _advance(job: Job, status: JobStatus, observation: Observation) -> JobStatus | None:
    """Move a SUBMITTED or RUNNING job on as its run was observed (RUNNING, or FINALIZING
    once it exited); its status now, None when another worker moved it first."""
    exited = observation.state == RunState.EXITED
    observed: dict[str, Any] = {
        "observed_state": observation.state.value,
        "observed_at": timezone.now(),
    }
    if status == JobStatus.SUBMITTED:
        # Recorded even when the run already ended (a lagging poll, or a short run), with the
        # time the executor says it started: the history shows it ran, and since when. A run
        # seen ended goes on to FINALIZING in the same transaction.
        started: dict[str, Any] = {}
        if observation.started_at is not None:  # (engines may round down to the second)
            started["started_at"] = max(observation.started_at, job.submitted_at or timezone.now())
        to, through = (
            (JobStatus.FINALIZING, JobStatus.RUNNING) if exited else (JobStatus.RUNNING, None)
        )
        if not transition(job, to, expected=status, through=through, **started, **observed):
            return None
        return to
    if exited and status == JobStatus.RUNNING:
        if not transition(job, JobStatus.FINALIZING, expected=status, **observed):
            return None
        return JobStatus.FINALIZING
    return status


def reconcile() -> None:
    """Resubmit jobs that never reached their executor; re-finalize jobs a dead worker left."""
    now = timezone.now()
    stale_queued = Job.objects.filter(
        status=JobStatus.QUEUED,
        updated_at__lt=now - timedelta(seconds=settings.FERRY_RESUBMIT_AFTER_S),
    )
    for job_id in stale_queued.values_list("pk", flat=True)[:100]:
        if leases.is_held(f"submit:{job_id}"):
            continue
        Job.objects.filter(pk=job_id).update(updated_at=now)  # don't resubmit it every cycle
        queue.enqueue_submit(job_id)
    stale_finalizing = Job.objects.filter(
        Q(updated_at__lt=now - timedelta(seconds=settings.FERRY_REFINALIZE_AFTER_S))
        | Q(
            executor_unreachable_since__isnull=False,
            updated_at__lt=now - timedelta(seconds=settings.FERRY_RESUBMIT_AFTER_S),
        ),
        status=JobStatus.FINALIZING,
    )
    for job_id in stale_finalizing.values_list("pk", flat=True)[:100]:
        if leases.is_held(f"finalize:{job_id}"):
            continue  # a live worker is at it (its heartbeat renews the lease)
        Job.objects.filter(pk=job_id).update(updated_at=now)
        queue.enqueue_finalize(job_id)
    _sweep_cleanups(now)


def _sweep_cleanups(now: Any) -> None:
    """Clean up after ended jobs whose worker died between the ending and the cleanup (their
    containers, work dirs and staged inputs would otherwise stay forever)."""
    left = Job.objects.filter(
        cleanup_pending=True,
        updated_at__lt=now - timedelta(seconds=settings.FERRY_REFINALIZE_AFTER_S),
    )
    for job_id in left.order_by("updated_at").values_list("pk", flat=True)[:100]:
        if leases.is_held(f"finalize:{job_id}"):
            continue
        Job.objects.filter(pk=job_id).update(updated_at=now)  # not again every cycle
        queue.enqueue_cleanup(job_id)


def cleanups_due() -> bool:
    """Whether an ended job that ended lately still waits for its cleanup (the poll loop keeps
    going for it, rather than leaving it to the next scheduled minute)."""
    lately = timezone.now() - timedelta(seconds=CLEANUP_FOLLOWED_S)
    return Job.objects.filter(cleanup_pending=True, updated_at__gte=lately).exists()


# ------------------------------------------------------------------------------------- finalize


def finalize_job(job_id: str) -> None:
    """Collect a finished run and store its results; one worker at a time per job (a lease
    renewed while it works), so a finalize that the reconciler starts again can't race one
    still copying, and one whose worker died is taken over within seconds."""
    with leases.holding(f"finalize:{job_id}") as held:
        if held is None:
            logger.info("finalize: job %s is being finalized by another worker", job_id)
            return
        _finalize(job_id)


def finalize_small_job(job: Job) -> bool:
    """Finalize a job here and now (the poll loop, in the pass that saw its run exit) when its
    results are small: local files of FERRY_INLINE_FINALIZE_BYTES in all at most, nothing to
    copy from a bucket. False when they are not: the caller leaves it to a finalize task
    (True also when another worker holds the job's finalize lease: it is at it). Under the
    same lease as finalize_job, so a worker killed meanwhile leaves a FINALIZING job that the
    reconciler finalizes again."""
    with leases.holding(f"finalize:{job.pk}") as held:
        if held is None:
            return True  # another worker is at it
        return _finalize(str(job.pk), small_only=True, loaded=job)


def _small(collected: Collected) -> bool:
    """Whether storing the results is quick: only local files, few bytes in all."""
    refs = _file_refs(collected.file_outputs)
    if collected.remote_files or any(isinstance(ref, str) for ref in refs):
        return False
    paths = [p for paths in collected.files.values() for p in paths] + refs
    total = 0
    for path in paths:
        try:
            total += Path(path).stat().st_size
        except OSError:
            return False  # let the finalize task report it
        if total > settings.FERRY_INLINE_FINALIZE_BYTES:
            return False
    return True


def _file_refs(file_outputs: dict[str, Any]) -> list[Any]:
    """Every file (a Path or a URI) anywhere in the structured file outputs."""
    found: list[Any] = []
    pending: list[Any] = list(file_outputs.values())
    while pending:
        value = pending.pop()
        if isinstance(value, Path | str):
            found.append(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return found


def _finalize(job_id: str, *, small_only: bool = False, loaded: Job | None = None) -> bool:
    """Finalize the job; with ``small_only``, only when its results are small (False, and
    nothing done but the collect, when they are not). ``loaded``: the job as the caller just
    moved it to FINALIZING (with its operation, workspace and owner), not read again; a
    change since then makes the move to its end lose (it expects FINALIZING)."""
    job = loaded or (
        Job.objects.filter(pk=job_id).select_related("operation", "workspace", "owner").first()
    )
    if job is None or job.status != JobStatus.FINALIZING:
        return True
    try:
        executor = get_executor(job.executor)
    except ExecutorError as exc:  # no longer configured: nothing to collect from or clean up
        transition(job, JobStatus.FAILED, expected=JobStatus.FINALIZING, error_message=str(exc))
        return True
    collected = _collect(job, executor)
    if collected is None:
        return True  # the reconciler tries again soon
    if small_only and collected.succeeded and not _small(collected):
        return False
    _finish(job, executor, collected)
    return True


def _finish(job: Job, executor: Executor, collected: Collected) -> None:
    """Store a collected outcome: SUCCEEDED with the outputs stored, or FAILED."""
    tails: dict[str, Any] = {
        "stdout_tail": collected.stdout_tail[-LOG_TAIL_CHARS:],
        "stderr_tail": collected.stderr_tail[-LOG_TAIL_CHARS:],
    }
    if not collected.succeeded:
        if collected.engine_restarted and _run_again(job, executor, collected):
            return
        message = collected.error_message or "The operation failed."
        _fail(job, executor, message, collected.error_detail, tails)
        return
    outputs = _stored_outputs(job, executor, collected, tails)
    if outputs is None:
        return
    if transition(
        job,
        JobStatus.SUCCEEDED,
        expected=JobStatus.FINALIZING,
        along=(lambda: file_publish_results(job=job)) if _declares_files(job) else None,
        outputs=outputs,
        cleanup_pending=True,
        **ANSWERED,
        **tails,
    ):
        _clean_up_after(executor, job)
        return
    job.refresh_from_db(fields=["status"])
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):  # cancelled while we copied
        file_discard_results(job=job)


def _collect(job: Job, executor: Executor) -> Collected | None:
    """The outcome of the job's run; None when its executor can't be reached (the job is
    marked so, and finalized again later). An executor error is a failed outcome."""
    try:
        collected = executor.collect(job)
    except ExecutorUnavailable as exc:
        _mark_unreachable([job.pk], exc, who=_engine_name(job.executor))
        return None
    except ExecutorError as exc:
        collected = Collected(succeeded=False, error_message=str(exc), error_detail=str(exc))
    if job.executor_unreachable_since is not None:  # it answered: no more notice or retries
        Job.objects.filter(pk=job.pk).update(**ANSWERED)
    return collected


def _fail(job: Job, executor: Executor, message: str, detail: str, tails: dict[str, Any]) -> None:
    if transition(
        job,
        JobStatus.FAILED,
        expected=JobStatus.FINALIZING,
        error_message=message,
        error_detail=detail,
        cleanup_pending=True,
        **tails,
    ):
        _clean_up_after(executor, job)


def _stored_outputs(
    job: Job, executor: Executor, collected: Collected, tails: dict[str, Any]
) -> dict[str, Any] | None:
    """The job's outputs with its files stored; None when they can't be: the job failed (bad
    outputs), or storage is down for now (the reconciler finalizes it again)."""
    try:
        started = time.monotonic()
        outputs = register_outputs(job, collected, executor.options.get("outputs_location"))
        if _declares_files(job):  # else nothing was relocated (and nothing is to publish)
            monitoring.record_relocation(job, time.monotonic() - started)
        return outputs
    except ApplicationError as exc:
        if _is_transient(exc):
            _mark_unreachable([job.pk], exc, who=STORAGE)
            return None
        _fail(job, executor, _relocation_failed(exc), str(exc), tails)
        return None
    except OutputError as exc:
        _fail(job, executor, str(exc), str(exc), tails)
        return None


def _declares_files(job: Job) -> bool:
    """Whether the job's operation has a file output: without one, a finalize stores no File."""
    assert job.operation is not None
    declared: dict[str, Any] = job.operation.spec.get("outputs", {})
    return any(is_file_output(spec) for spec in declared.values())


def _run_again(job: Job, executor: Executor, collected: Collected) -> bool:
    """Queue a job whose engine restarted under its run again, from the start, if its operation
    is marked safe to retry and it has attempts left (FERRY_ENGINE_RESTART_RETRIES more than
    the first); False when it should fail instead."""
    spec = job.operation.spec if job.operation is not None else {}
    if not spec.get("safe_to_retry") or job.attempts > settings.FERRY_ENGINE_RESTART_RETRIES:
        return False
    if transition(
        job,
        JobStatus.QUEUED,
        expected=JobStatus.FINALIZING,
        error_detail=f"attempt {job.attempts}: {collected.error_detail}",
    ):
        # The stopped run's container and work dir go before the next attempt is submitted,
        # so it starts from scratch (if this worker dies here, the reconciler resubmits the
        # job and submit removes the container of the earlier attempt itself).
        _cleanup(executor, job)
        queue.enqueue_submit(job.pk)
    return True


class OutputError(Exception):
    pass


def _relocation_failed(exc: ApplicationError) -> str:
    if isinstance(exc, LocationRefused):
        return (
            f"The results can't be collected: {exc.message} An admin must register that bucket "
            "as a storage location: a bucket credential Ferry reads it with."
        )
    return f"The results can't be stored: {exc.message}"


def _as_position(position: Position | int | None) -> Position:
    if position is None:
        return ()
    return (position,) if isinstance(position, int) else position


def _result_file_id(job: Job, output: str, position: Position | int | None) -> uuid.UUID:
    """The id of the File at ``position`` in a job's output: the same on every finalize. A
    file or a list's items keep the ids they had before outputs kept their structure."""
    where = _as_position(position)
    if all(isinstance(part, int) for part in where) and len(where) <= 1:
        return uuid.uuid5(job.pk, f"output/{output}/{where[0] if where else 0}")
    return uuid.uuid5(job.pk, f"output/{output}/{json.dumps(list(where))}")


def _basename(name_or_uri: str) -> str:
    return str(name_or_uri).rstrip("/").rsplit("/", 1)[-1]


def _result_key(job: Job, output: str, position: Position | int | None, name_or_uri: str) -> str:
    """Where a result goes in a bucket location: under the job's folder, one folder per step
    into the output's structure (``grid/1/0/1.txt``, ``by_sample/s1/counts.tsv``)."""
    folders = "".join(f"/{path_segment(part)}" for part in _as_position(position))
    return f"workspaces/{job.workspace_id}/jobs/{job.pk}/{output}{folders}/{_basename(name_or_uri)}"


_ABSENT = object()


def _files_value(name: str, spec: dict[str, Any], collected: Collected) -> Any:
    """An output that holds files, as the executor reported it: its structure with each file a
    Path (a host file) or a str (a bucket URI); ``_ABSENT`` for an optional one without a value.
    Executors that report only flat lists (``files``/``remote_files``: the Docker executor) give
    a file or a list of files."""
    is_list = spec.get("type") == "list"
    if name in collected.file_outputs:
        value = collected.file_outputs[name]
    elif name in collected.remote_files:
        uris = collected.remote_files[name]
        if not is_list and len(uris) != 1:
            raise OutputError(f"The operation's output '{name}' must be one file, not {len(uris)}.")
        value = uris if is_list else uris[0]
    else:
        paths = collected.files.get(name)
        raw = collected.values.get(name)
        if is_list and (paths == [] or raw == []):  # an empty array of files
            return []
        if not paths:
            if raw is None and not spec.get("required", True):
                return _ABSENT
            named = (
                f" names {raw!r}, which it did not write"
                if raw is not None
                else " is missing from outputs.json"
            )
            raise OutputError(f"The operation's output '{name}'{named}.")
        if not is_list and len(paths) != 1:
            raise OutputError(
                f"The operation's output '{name}' must be one file, not {len(paths)}."
            )
        value = paths if is_list else paths[0]
    if value is None:
        if spec.get("required", True):
            raise OutputError(f"The operation's output '{name}' has no value.")
        return _ABSENT
    return value


def register_outputs(
    job: Job, collected: Collected, outputs_location: str | None = None
) -> dict[str, Any]:
    """Check the outputs against the spec and store their files as Files (idempotently), each
    output keeping its structure with File ids where its files were::

        {"grid": [["<id>", "<id>"], ["<id>"], []], "by_sample": {"s1": "<id>"}, "n": 3}

    Each File's id and bucket key follow from the job, the output and the file's position in
    it, so a repeated finalize finds what an earlier one stored; names are the files' basenames
    where no other result of the job has the same (:func:`wdl.outputs.distinct_file_names`)."""
    assert job.operation is not None
    declared: dict[str, Any] = job.operation.spec.get("outputs", {})
    plain, with_files, leaves = _sorted_outputs(declared, collected)
    for name, _, ref in leaves:
        _check_output_location(job, name, ref, outputs_location)
    stored = _store_result_files(job, declared, leaves, collected.values)
    outputs: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in with_files:

            def file_id_at(position: Position, ref: Any, name: str = name) -> str:
                return stored[(name, position)]

            outputs[name] = rebuild(spec, with_files[name], file_id_at)
        elif name in plain:
            outputs[name] = plain[name]
    return outputs


Leaf = tuple[str, Position, Any]  # (output, position in it, Path or URI)


def _sorted_outputs(
    declared: dict[str, Any], collected: Collected
) -> tuple[dict[str, Any], dict[str, Any], list[Leaf]]:
    """(plain values, values holding files, every file of those) of the declared outputs,
    each checked against its spec; OutputError for a missing required one or a bad shape."""
    plain: dict[str, Any] = {}
    with_files: dict[str, Any] = {}
    leaves: list[Leaf] = []
    for name, spec in declared.items():
        if is_file_output(spec):
            value = _files_value(name, spec, collected)
            if value is _ABSENT:
                continue
            try:
                with_files[name] = value
                leaves.extend((name, position, ref) for position, ref in file_leaves(spec, value))
            except OutputShapeError as exc:
                raise OutputError(f"The operation's {exc.describe(name)}.") from None
        elif name in collected.values and collected.values[name] is not None:
            try:
                plain[name] = rebuild(spec, collected.values[name], _no_files)
            except OutputShapeError as exc:
                raise OutputError(f"The operation's {exc.describe(name)}.") from None
        elif spec.get("required", True):
            raise OutputError(f"The operation did not report its output '{name}' in outputs.json.")
    return plain, with_files, leaves


def _check_output_location(job: Job, name: str, ref: Any, outputs_location: str | None) -> None:
    """Only what the engine wrote itself is relocated, and never another workspace's object."""
    if isinstance(ref, str) and outputs_location and not ref.startswith(outputs_location):
        raise OutputError(
            f"The output '{name}' names {ref}, outside the executor's "
            f"outputs_location {outputs_location}."
        )
    _refuse_foreign_outputs(
        job, name, [ref if isinstance(ref, str) else "file://" + quote(str(ref))]
    )


def _store_result_files(
    job: Job, declared: dict[str, Any], leaves: list[Leaf], reported: dict[str, Any]
) -> dict[tuple[str, Position], str]:
    """Each file stored as a pending File of the job (idempotently: its id and key follow from
    the job, output and position); their ids by (output, position)."""
    file_ids = [_result_file_id(job, name, position) for name, position, _ in leaves]
    names = distinct_file_names(
        [
            ResultFile(name, position, _basename(str(ref)), tiebreak=file_id.hex[:8])
            for (name, position, ref), file_id in zip(leaves, file_ids, strict=True)
        ]
    )
    stored: dict[tuple[str, Position], str] = {}
    assert job.operation is not None
    webmev = runs_webmev_style(job.operation.spec)
    for (name, position, ref), file_id, file_name in zip(leaves, file_ids, names, strict=True):
        item = _file_spec_at(declared[name], position)
        common: dict[str, Any] = {
            "workspace": job.workspace,
            "owner": job.owner,
            "name": file_name,
            "file_type": item.get("file_type"),
            "file_id": file_id,
            "produced_by": job,
            "key": _result_key(job, name, position, str(ref)),
        }
        resource_type = None
        if webmev or "webmev" in declared[name]:
            # The file's WebMEV resource type (a WebMEV workflow's: the one its spec declares),
            # and the Ferry file type it maps to.
            raw = reported.get(name) if webmev else None
            resource_type = output_resource_type(declared[name], raw, _as_position(position))
            common["file_type"] = file_type_for(resource_type, common["file_type"])
        if isinstance(ref, str):
            record = file_register_object(uri=ref, resource_type=resource_type or "", **common)
        else:
            record = file_register_result(
                path=str(ref), resource_type=resource_type or "", **common
            )
        stored[(name, position)] = str(record.pk)
    return stored


def _no_files(position: Position, ref: Any) -> Any:
    raise OutputShapeError(position, "holds a file where the spec declares none")


def _refuse_foreign_outputs(job: Job, name: str, uris: list[str]) -> None:
    """An engine may report any path or URI as a File output (e.g. a String input passed
    through): never one of another workspace's objects the job's owner can't read."""
    for uri in uris:
        if object_of_unreadable_workspace(job.owner, uri):
            raise OutputError(
                f"The output '{name}' names a stored object of a workspace you can't read."
            )


def _file_spec_at(spec: dict[str, Any], position: Position) -> dict[str, Any]:
    """The ``file`` node of an output's spec that the file at ``position`` belongs to."""
    node = spec
    for part in position:
        kind = node.get("type")
        if kind == "list":
            node = node["items"]
        elif kind == "map":
            node = node["values"]
        elif kind == "pair":
            node = node[str(part)]
        elif kind == "struct":
            node = node["members"][part]
    return node


def _cleanup(executor: Executor, job: Job) -> None:
    if job.status != JobStatus.SUCCEEDED:
        file_discard_results(job=job)
    remove_staged_inputs(job, executor.options.get("inputs_location"))
    try:
        executor.cleanup(job)
        executor.remove_workdir(job)
    except ExecutorError:  # the reconciler tries again (cleanup_pending stays set)
        logger.warning("could not clean up after job %s", job.pk, exc_info=True)
        return
    Job.objects.filter(pk=job.pk, cleanup_pending=True).update(cleanup_pending=False)
    job.cleanup_pending = False


# Set by the poll loop: the cleanups after the jobs it finalizes run on a thread of its process,
# so that it goes on to the next exit while a container and a work dir are removed. Each job's
# Job.cleanup_pending, set with its ending, is cleared when its cleanup is done; a process that
# dies first leaves it to the reconciler's sweep (cleanup_job).
_cleanups_later: contextvars.ContextVar[ThreadPoolExecutor | None] = contextvars.ContextVar(
    "ferry_cleanups_later", default=None
)


def _clean_up_after(executor: Executor, job: Job) -> None:
    """Clean up after a job that just ended: now, or on the poll loop's cleanup threads."""
    pool = _cleanups_later.get()
    if pool is None:
        _cleanup(executor, job)
    else:
        pool.submit(_cleanup_on_thread, executor, job)


def _cleanup_on_thread(executor: Executor, job: Job) -> None:
    try:
        _cleanup(executor, job)
    except Exception:  # cleanup_pending stays set: the reconciler's sweep tries again
        logger.exception("could not clean up after job %s", job.pk)
        close_old_connections()


def _close_connection() -> None:
    connection.close()  # (resolved on the thread that runs it)


@contextlib.contextmanager
def _cleaning_up_later() -> Iterator[None]:
    """Within the block, cleanups after jobs that end run on a thread, one after the other
    (one database connection, kept until the block ends); all done at its end."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="ferry-cleanup")
    token = _cleanups_later.set(pool)
    try:
        yield
    finally:
        _cleanups_later.reset(token)
        pool.submit(_close_connection)
        pool.shutdown(wait=True)


def cleanup_job(job_id: str) -> None:
    """Clean up after an ended job whose worker died before it did (the reconciler enqueues
    this for jobs left with ``cleanup_pending``); under the job's finalize lease, so it can't
    race a finalize still at it."""
    with leases.holding(f"finalize:{job_id}") as held:
        if held is None:
            return
        job = Job.objects.filter(pk=job_id, cleanup_pending=True).first()
        if job is None or JobStatus(job.status) not in TERMINAL:
            return
        try:
            executor = get_executor(job.executor)
        except ExecutorError:  # no longer configured: nothing can be removed there
            logger.warning("cleanup: job %s's executor %r is gone", job.pk, job.executor)
            Job.objects.filter(pk=job.pk).update(cleanup_pending=False)
            return
        _cleanup(executor, job)


# --------------------------------------------------------------------------------------- cancel


def cancel_job(job_id: str) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status != JobStatus.CANCELLING:
        return
    _finish_cancel(job, get_executor(job.executor))


def _finish_cancel(job: Job, executor: Executor) -> None:
    """Stop the job's run; one attempt (the executor never sleeps on a retry): a CANCELLING
    job is tried again on every poll cycle until its executor confirms or gives up."""
    try:  # before the cancel, which may remove what holds them (a container)
        stdout, stderr = executor.logs(job, tail=200)
    except ExecutorError:
        stdout, stderr = "", ""
    try:
        executor.cancel(job)
    except ExecutorUnavailable:
        return  # try again on the next cycle
    except ExecutorError as exc:  # the executor gave up: say so (the run may go on there)
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.CANCELLING,
            error_message=f"The job could not be cancelled: {exc}",
            error_detail=str(exc),
            stdout_tail=stdout[-LOG_TAIL_CHARS:],
            stderr_tail=stderr[-LOG_TAIL_CHARS:],
        )
        file_discard_results(job=job)
        return
    if transition(
        job,
        JobStatus.CANCELLED,
        expected=JobStatus.CANCELLING,
        cleanup_pending=True,
        stdout_tail=stdout[-LOG_TAIL_CHARS:],
        stderr_tail=stderr[-LOG_TAIL_CHARS:],
    ):
        _cleanup(executor, job)


# ---------------------------------------------------------------------------------- poll loop


def poll_active() -> str:
    """The scheduled poll loop: one cluster at a time (a lease renewed while it runs), cycles
    every FERRY_POLL_INTERVAL_S (sooner when an engine tells of an exit: those jobs are polled
    in the next cycle) for up to FERRY_POLL_LOOP_S seconds while jobs are active, then hands
    over to a fresh task. Each cycle polls only the jobs that are due (PollSchedule)."""
    loop_for = float(settings.FERRY_POLL_LOOP_S)
    deadline = time.monotonic() + loop_for
    active = 0
    submits = LoopSubmits.for_this_loop()
    with (
        leases.holding(POLL_LEASE) as held,
        _cleaning_up_later(),
        _polls_written(),
        _submitting(submits, held is not None),
    ):
        if held is None:
            logger.info("poll: another worker holds the poll lease")
            return "another worker is polling"
        late: dict[uuid.UUID, float] = {}  # exits told of that no poll has shown yet
        kept_at: float | None = None  # when the loop last reconciled
        told_only = False
        while True:
            housekeeping = kept_at is None or time.monotonic() - kept_at >= HOUSEKEEPING_EVERY_S
            if housekeeping:
                kept_at = time.monotonic()
            if submits is not None and (housekeeping or submits.wanted.is_set()):
                submits.take()
            if housekeeping or not told_only:
                active, ended = _poll_cycle(set(late), housekeeping=housekeeping)
            else:
                ended = _poll_told(set(late))
            if (not active and not cleanups_due()) or time.monotonic() >= deadline:
                break
            now = time.monotonic()
            late = {k: at for k, at in late.items() if k not in ended and now - at < LATE_EXIT_S}
            # An engine may tell of an exit a moment before its poll shows it, and a run may
            # exit before its submit is recorded (the job is still QUEUED, so the cycle did not
            # probe it): look again soon, then less and less often (an exit no poll will show,
            # e.g. of a cancelled job's container, costs a few cycles, not one every 50 ms).
            told = wait_for_exits(_wait_before_next_pass(active, late, now))
            late.update(dict.fromkeys(told, time.monotonic()))
            # Woken by exits, or looking again for exits told of (a trivial run exits before
            # its submit is recorded): a pass for them alone; the rest waits for housekeeping
            # or a wait that nothing ended.
            told_only = bool(told or late or (submits is not None and submits.wanted.is_set()))
            if held.lost.is_set():
                return "lost the poll lease"
    if (active and loop_for > 0) or (submits is not None and submits.left_queued()):
        queue.kick_poller()  # (a job queued as this loop ended: the next loop submits it)
    logger.info("poll: loop ended with %d active job(s)", active)
    return f"{active} active job(s)"


def _wait_before_next_pass(active: int, late: dict[uuid.UUID, float], now: float) -> float:
    wait = float(settings.FERRY_POLL_INTERVAL_S)
    if not active:  # only cleanups under way keep it going: see them done soon
        wait = min(wait, HOUSEKEEPING_EVERY_S)
    if late:
        waited = now - min(late.values())
        wait = min(wait, max(LATE_EXIT_RECHECK_S, waited / 2))
    return wait


class LoopSubmits:
    """The poll loop's process submits the new jobs of the executors it waits on (their runs'
    exits come as events) on threads of its own (FERRY_LOOP_SUBMITTERS), woken by the notice
    ``queue.enqueue_submit`` sends instead of a task through the queue: no pusher, queue row,
    worker pickup or result for each job. Jobs queued in the last FERRY_RESUBMIT_AFTER_S and
    never found unreachable are taken at each notice and in each housekeeping pass; older
    ones are the reconciler's (a task), and ``submit_job``'s lease keeps two submitters of
    one job apart. A process killed meanwhile leaves QUEUED jobs, as a killed task would."""

    def __init__(self, aliases: list[str], executors: list[Executor]) -> None:
        self.aliases = aliases
        self.wanted = threading.Event()
        self._executors = executors
        self._queue: SimpleQueue[uuid.UUID | None] = SimpleQueue()
        self._in_flight: set[uuid.UUID] = set()
        self._failed: set[uuid.UUID] = set()  # (left to the next loop, or the reconciler)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_this_loop(cls) -> LoopSubmits | None:
        """None where submits go through the queue only (SQLite, tasks run inline)."""
        if not queue.loop_submits_possible():
            return None
        waiting: dict[str, Executor] = {}
        for alias in settings.EXECUTORS:
            with contextlib.suppress(ExecutorError):
                executor = get_executor(alias)
                if executor.waits_for_exits:
                    waiting[alias] = executor
        return cls(list(waiting), list(waiting.values())) if waiting else None

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._listen, name="loop submits: listen", daemon=True),
            *(
                threading.Thread(target=self._submit, name="loop submits", daemon=True)
                for _ in range(max(1, int(settings.FERRY_LOOP_SUBMITTERS)))
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop listening; the submits under way finish first."""
        self._stop.set()
        for _ in self._threads[1:]:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=60)

    def _fresh_queued(self) -> Any:
        since = timezone.now() - timedelta(seconds=settings.FERRY_RESUBMIT_AFTER_S)
        return Job.objects.filter(
            status=JobStatus.QUEUED,
            executor__in=self.aliases,
            executor_unreachable_since__isnull=True,
            updated_at__gte=since,
        )

    def take(self) -> None:
        """Hand the fresh QUEUED jobs to the submit threads (each once)."""
        self.wanted.clear()
        with self._lock:
            skipped = self._in_flight | self._failed
        found = self._fresh_queued().exclude(pk__in=skipped).order_by("created_at")
        for job_id in found.values_list("pk", flat=True)[:100]:
            with self._lock:
                self._in_flight.add(job_id)
            self._queue.put(job_id)

    def left_queued(self) -> bool:
        """Whether a fresh job waits that no loop will submit (it came as this one ended)."""
        return bool(self._fresh_queued().exists())

    def _submit(self) -> None:
        try:
            while (job_id := self._queue.get()) is not None:
                try:
                    submit_job(str(job_id))
                except Exception:  # the reconciler submits it again
                    logger.exception("loop submits: could not submit job %s", job_id)
                    with self._lock:
                        self._failed.add(job_id)
                    close_old_connections()
                finally:
                    with self._lock:
                        self._in_flight.discard(job_id)
        finally:
            connection.close()  # this thread's own

    def _listen(self) -> None:
        import psycopg

        from api.pg_listen import listen_conninfo

        while not self._stop.is_set():
            try:
                with psycopg.Connection.connect(autocommit=True, **listen_conninfo()) as listener:
                    listener.execute(f"LISTEN {queue.SUBMITS_CHANNEL}")
                    self._wake()  # what was queued before the LISTEN
                    while not self._stop.is_set():
                        for _ in listener.notifies(timeout=0.5, stop_after=1):
                            self._wake()
            except Exception:  # the database went away: housekeeping passes take meanwhile
                logger.warning("loop submits: the LISTEN connection failed", exc_info=True)
                self._stop.wait(1.0)

    def _wake(self) -> None:
        self.wanted.set()
        for executor in self._executors:
            executor.wake_waiter()


@contextlib.contextmanager
def _submitting(submits: LoopSubmits | None, held: bool) -> Iterator[None]:
    if submits is None or not held:
        yield
        return
    submits.start()
    try:
        yield
    finally:
        submits.stop()


@contextlib.contextmanager
def _polls_written() -> Iterator[None]:
    """The loop's poll counters held back (monitoring.record_poll) are written at its end."""
    try:
        yield
    finally:
        monitoring.flush_polls()


# The reconciler looks for jobs stale for FERRY_RESUBMIT_AFTER_S/FERRY_REFINALIZE_AFTER_S
# (30 s): once a second is soon enough, also when exits wake the loop many times a second.
HOUSEKEEPING_EVERY_S = 1.0
LATE_EXIT_S = 10.0  # how long an exit told of is looked for again until a poll shows it
LATE_EXIT_RECHECK_S = 0.05


def wait_for_exits(timeout: float) -> set[uuid.UUID]:
    """Wait between poll cycles: until a run of an executor that follows its engine's events
    exits, at most ``timeout`` seconds; the ids of the jobs seen exiting. Executors that don't
    wait are polled every cycle, so a cycle is at most ``timeout`` apart."""
    waiting: list[Executor] = []
    for alias in settings.EXECUTORS:
        with contextlib.suppress(ExecutorError):
            executor = get_executor(alias)
            if executor.waits_for_exits:
                waiting.append(executor)
    if not waiting:
        time.sleep(timeout)
        return set()
    seen = waiting[0].wait_for_exits(timeout)
    for executor in waiting[1:]:  # whatever the others saw meanwhile
        seen |= executor.wait_for_exits(0)
    return seen


def watch_poller(stop: threading.Event) -> None:
    """Run by each worker process in a thread: every lease TTL, start a poll loop when no live
    worker holds the poll lease. A loop's holder on another machine that died is replaced as
    soon as its lease lapses, not at the next scheduled minute."""
    try:
        while not stop.wait(settings.FERRY_LEASE_TTL_S):
            try:
                if Job.objects.active().exists():
                    queue.kick_poller()
            except Exception:  # the database is away for a moment: try on the next round
                logger.warning("poll watch: could not check the poll lease", exc_info=True)
                close_old_connections()
    finally:
        connection.close()


RECOVER_AT_ONCE = 1000  # per status; the reconciler takes any beyond


def recover() -> dict[str, int]:
    """Run when a worker starts: free the leases of dead processes on this host and, at once
    rather than at the reconciler's pace, resubmit every QUEUED job and re-finalize every
    FINALIZING job no live worker holds (tasks a killed cluster had fetched stay locked in the
    broker); then start polling. Everything enqueued is idempotent and leased."""
    freed = leases.free_dead_holders()
    queued = 0
    oldest = Job.objects.order_by("created_at").values_list("pk", flat=True)
    for job_id in oldest.filter(status=JobStatus.QUEUED)[:RECOVER_AT_ONCE]:
        if not leases.is_held(f"submit:{job_id}"):
            queue.enqueue_submit(job_id)
            queued += 1
    finalizing = 0
    for job_id in oldest.filter(status=JobStatus.FINALIZING)[:RECOVER_AT_ONCE]:
        if not leases.is_held(f"finalize:{job_id}"):
            queue.enqueue_finalize(job_id)
            finalizing += 1
    queue.kick_poller()
    logger.info(
        "recover: freed %d lease(s) of dead workers; resubmitted %d, re-finalizing %d job(s)",
        freed,
        queued,
        finalizing,
    )
    return {"freed": freed, "resubmitted": queued, "refinalizing": finalizing}
