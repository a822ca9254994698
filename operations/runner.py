"""Worker side: submit, poll all active jobs in batches, finalize, cancel, reconcile.

Every step may be interrupted at any line and run again, by this worker or another cluster:
state changes are conditional transitions, submits are idempotent (the job id names the run),
result files get ids derived from the job, and the poll loop holds a lease.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from api import storage
from api.buckets import BucketUnavailable
from api.errors import ApplicationError
from api.locations import LocationRefused
from api.selectors import object_of_unreadable_workspace
from api.services import file_register_object, file_register_result
from executors.base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Observation,
    RunState,
)
from executors.registry import get_executor

from . import queue
from .models import Job, Lease
from .states import JobStatus
from .transitions import transition
from .wdl_runs import prepare_wdl_run, remove_staged_inputs

logger = logging.getLogger(__name__)

POLL_LEASE = "poll-active"
LOG_TAIL_CHARS = 64 * 1024
_PROBED = (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.CANCELLING)


# ------------------------------------------------------------------------------------- submit


def submit_job(job_id: str) -> None:
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
            _mark_unreachable([job.pk], exc)
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
        _mark_unreachable([job.pk], exc)
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
        error_detail="",
    ):
        job.refresh_from_db()
        if job.status in (JobStatus.CANCELLING, JobStatus.CANCELLED):
            executor.cancel(job)


def fetch_inputs(job: Job) -> None:
    """Download the job's bucket-stored inputs to the local paths its run spec mounts."""
    for mount in job.run_spec.get("mounts", []):
        if mount.get("fetch"):
            storage.localize(mount["fetch"], Path(mount["source"]))


# --------------------------------------------------------------------------------------- poll


UNREACHABLE = "executor unreachable since"


def _is_transient(exc: ApplicationError) -> bool:
    """Storage or a bucket that is down (5xx) rather than a request that can never work."""
    return isinstance(exc, BucketUnavailable) or exc.status_code >= 500


def _mark_unreachable(job_ids: list[Any], exc: Exception) -> None:
    """Show on the jobs that their executor (or a bucket) can't be reached; they keep their
    state. The first time is kept, so the notice says since when."""
    since = f"{UNREACHABLE} {timezone.now():%Y-%m-%d %H:%M:%S} UTC: {exc}"
    Job.objects.filter(pk__in=job_ids).exclude(error_detail__startswith=UNREACHABLE).update(
        error_detail=since
    )


def poll_cycle() -> int:
    """One pass over every active job; returns how many remain active."""
    reconcile()
    by_executor: dict[str, list[Job]] = defaultdict(list)
    # Only what polling reads: loading inputs/outputs/log tails of 10,000 jobs costs seconds.
    active = Job.objects.filter(status__in=[s.value for s in _PROBED]).only(
        "id", "executor", "status", "run_spec", "workspace_id", "error_detail", "external_id"
    )
    for job in active:
        by_executor[job.executor].append(job)
    for alias, jobs in by_executor.items():
        try:
            executor = get_executor(alias)
            observations = executor.poll(jobs)
        except ExecutorUnavailable as exc:
            _mark_unreachable([j.pk for j in jobs], exc)
            continue
        except ExecutorError as exc:  # e.g. a Cromwell server record removed meanwhile
            logger.error("poll: executor %s: %s", alias, exc)
            continue
        marked = [j.pk for j in jobs if j.error_detail.startswith(UNREACHABLE)]
        if marked:
            Job.objects.filter(pk__in=marked, error_detail__startswith=UNREACHABLE).update(
                error_detail=""
            )
        for job in jobs:
            try:
                _apply(job, observations.get(job.id, Observation(RunState.MISSING)), executor)
            except Exception:
                logger.exception("poll: could not apply the observation of job %s", job.pk)
    return Job.objects.active().count()


def _apply(job: Job, observation: Observation, executor: Executor) -> None:
    status = JobStatus(job.status)
    if status == JobStatus.CANCELLING:
        _finish_cancel(job, executor)
        return
    if observation.state == RunState.PENDING:
        return
    if observation.state == RunState.MISSING:
        transition(
            job,
            JobStatus.FAILED,
            expected=status,
            error_message="The job's run disappeared from its executor before it finished (removed outside Ferry?).",
            error_detail=f"{executor.alias} has no run for job {job.pk}",
        )
        return
    if status == JobStatus.SUBMITTED:
        if not transition(job, JobStatus.RUNNING, expected=status):
            return
        status = JobStatus.RUNNING
    if (
        observation.state == RunState.EXITED
        and status == JobStatus.RUNNING
        and transition(job, JobStatus.FINALIZING, expected=status)
    ):
        queue.enqueue_finalize(job.pk)


def reconcile() -> None:
    """Resubmit jobs that never reached their executor; re-finalize jobs a dead worker left."""
    now = timezone.now()
    stale_queued = Job.objects.filter(
        status=JobStatus.QUEUED,
        updated_at__lt=now - timedelta(seconds=settings.FERRY_RESUBMIT_AFTER_S),
    )
    for job_id in stale_queued.values_list("pk", flat=True)[:100]:
        Job.objects.filter(pk=job_id).update(updated_at=now)  # don't resubmit it every cycle
        queue.enqueue_submit(job_id)
    stale_finalizing = Job.objects.filter(
        Q(updated_at__lt=now - timedelta(seconds=settings.FERRY_REFINALIZE_AFTER_S))
        | Q(
            error_detail__startswith=UNREACHABLE,
            updated_at__lt=now - timedelta(seconds=settings.FERRY_RESUBMIT_AFTER_S),
        ),
        status=JobStatus.FINALIZING,
    )
    for job_id in stale_finalizing.values_list("pk", flat=True)[:100]:
        Job.objects.filter(pk=job_id).update(updated_at=now)
        queue.enqueue_finalize(job_id)


# ------------------------------------------------------------------------------------- finalize


def finalize_job(job_id: str) -> None:
    """Collect a finished run and store its results; one worker at a time per job (a lease),
    so a finalize that the reconciler starts again can't race one still copying."""
    holder = uuid.uuid4().hex
    lease = f"finalize:{job_id}"
    if not acquire_lease(lease, holder, timedelta(seconds=settings.FERRY_FINALIZE_LEASE_S)):
        logger.info("finalize: job %s is being finalized by another worker", job_id)
        return
    try:
        _finalize(job_id)
    finally:
        release_lease(lease, holder)


def _finalize(job_id: str) -> None:
    job = Job.objects.filter(pk=job_id).select_related("operation", "workspace", "owner").first()
    if job is None or job.status != JobStatus.FINALIZING:
        return
    try:
        executor = get_executor(job.executor)
        collected = executor.collect(job)
    except ExecutorUnavailable as exc:
        _mark_unreachable([job.pk], exc)
        return  # the reconciler tries again soon
    except ExecutorError as exc:
        collected = Collected(succeeded=False, error_message=str(exc), error_detail=str(exc))
    if job.error_detail.startswith(UNREACHABLE):  # it answered: no more notice or retries
        Job.objects.filter(pk=job.pk).update(error_detail="")
    tails = {
        "stdout_tail": collected.stdout_tail[-LOG_TAIL_CHARS:],
        "stderr_tail": collected.stderr_tail[-LOG_TAIL_CHARS:],
    }
    if not collected.succeeded:
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.FINALIZING,
            error_message=collected.error_message or "The operation failed.",
            error_detail=collected.error_detail,
            **tails,
        )
        _cleanup(executor, job)
        return
    try:
        outputs = register_outputs(job, collected, executor.options.get("outputs_location"))
    except ApplicationError as exc:
        if _is_transient(exc):  # storage down for now: the reconciler finalizes it again
            _mark_unreachable([job.pk], exc)
            return
        message = _relocation_failed(exc)
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.FINALIZING,
            error_message=message,
            error_detail=str(exc),
            **tails,
        )
        _cleanup(executor, job)
        return
    except OutputError as exc:
        transition(
            job,
            JobStatus.FAILED,
            expected=JobStatus.FINALIZING,
            error_message=str(exc),
            error_detail=str(exc),
            **tails,
        )
        _cleanup(executor, job)
        return
    if transition(
        job,
        JobStatus.SUCCEEDED,
        expected=JobStatus.FINALIZING,
        outputs=outputs,
        error_detail="",
        **tails,
    ):
        _cleanup(executor, job)


class OutputError(Exception):
    pass


def _relocation_failed(exc: ApplicationError) -> str:
    if isinstance(exc, LocationRefused):
        return (
            f"The results can't be collected: {exc.message} An admin must register that bucket "
            "as a storage location: a bucket credential Ferry reads it with."
        )
    return f"The results can't be stored: {exc.message}"


def _result_file_id(job: Job, name: str, index: int) -> uuid.UUID:
    return uuid.uuid5(job.pk, f"output/{name}/{index}")


def _result_key(job: Job, output: str, index: int | None, name_or_uri: str) -> str:
    """Where a result goes in a bucket location: under the job's folder."""
    name = name_or_uri.rstrip("/").rsplit("/", 1)[-1]
    folder = f"workspaces/{job.workspace_id}/jobs/{job.pk}/{output}"
    return f"{folder}/{name}" if index is None else f"{folder}/{index}/{name}"


def register_outputs(
    job: Job, collected: Collected, outputs_location: str | None = None
) -> dict[str, Any]:
    """Check the outputs against the spec and store result files as Files (idempotently)."""
    assert job.operation is not None
    declared: dict[str, Any] = job.operation.spec.get("outputs", {})
    outputs: dict[str, Any] = {}
    for name, spec in declared.items():
        is_list = spec.get("type") == "list"
        item = spec.get("items", {}) if is_list else spec
        if item.get("type") == "file" and name in collected.remote_files:
            uris = collected.remote_files[name]
            outside = [u for u in uris if outputs_location and not u.startswith(outputs_location)]
            if outside:  # only what the engine wrote itself is relocated
                raise OutputError(
                    f"The output '{name}' names {outside[0]}, outside the executor's "
                    f"outputs_location {outputs_location}."
                )
            _refuse_foreign_outputs(job, name, uris)
            if is_list and not uris:
                outputs[name] = []
                continue
            if not is_list and len(uris) != 1:
                raise OutputError(
                    f"The operation's output '{name}' must be one file, not {len(uris)}."
                )
            relocated = [
                str(
                    file_register_object(
                        uri=uri,
                        workspace=job.workspace,
                        owner=job.owner,
                        name=uri.rstrip("/").rsplit("/", 1)[-1],
                        file_type=item.get("file_type"),
                        file_id=_result_file_id(job, name, i),
                        produced_by=job,
                        key=_result_key(job, name, i if is_list else None, uri),
                    ).pk
                )
                for i, uri in enumerate(uris)
            ]
            outputs[name] = relocated if is_list else relocated[0]
        elif item.get("type") == "file":
            paths = collected.files.get(name)
            raw = collected.values.get(name)
            if is_list and (paths == [] or raw == []):  # an empty array of files
                outputs[name] = []
                continue
            if not paths:
                if raw is None and not spec.get("required", True):
                    continue
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
            _refuse_foreign_outputs(job, name, ["file://" + quote(str(p)) for p in paths])
            stored = [
                str(
                    file_register_result(
                        path=str(path),
                        workspace=job.workspace,
                        owner=job.owner,
                        name=path.name,
                        file_type=item.get("file_type"),
                        file_id=_result_file_id(job, name, i),
                        produced_by=job,
                        key=_result_key(job, name, i if is_list else None, path.name),
                    ).pk
                )
                for i, path in enumerate(paths)
            ]
            outputs[name] = stored if is_list else stored[0]
        else:
            if name not in collected.values:
                if spec.get("required", True):
                    raise OutputError(
                        f"The operation did not report its output '{name}' in outputs.json."
                    )
                continue
            outputs[name] = _check_value(name, item, collected.values[name], is_list)
    return outputs


def _refuse_foreign_outputs(job: Job, name: str, uris: list[str]) -> None:
    """An engine may report any path or URI as a File output (e.g. a String input passed
    through): never one of another workspace's objects the job's owner can't read."""
    for uri in uris:
        if object_of_unreadable_workspace(job.owner, uri):
            raise OutputError(
                f"The output '{name}' names a stored object of a workspace you can't read."
            )


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "float": (int, float),
    "string": (str,),
    "boolean": (bool,),
}


def _check_value(name: str, item: dict[str, Any], value: Any, is_list: bool) -> Any:
    values = value if is_list else [value]
    if is_list and not isinstance(value, list):
        raise OutputError(f"The operation's output '{name}' must be a list.")
    expected = _PY_TYPES.get(item.get("type", ""), (object,))
    for v in values:
        if not isinstance(v, expected) or (isinstance(v, bool) and bool not in expected):
            raise OutputError(
                f"The operation's output '{name}' must be {item.get('type')}, not {type(v).__name__}."
            )
    return value


def _cleanup(executor: Executor, job: Job) -> None:
    remove_staged_inputs(job, executor.options.get("inputs_location"))
    try:
        executor.cleanup(job)
        remove = getattr(executor, "remove_workdir", None)
        if remove is not None:
            remove(job)
    except ExecutorError:
        logger.warning("could not clean up after job %s", job.pk, exc_info=True)


# --------------------------------------------------------------------------------------- cancel


def cancel_job(job_id: str) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status != JobStatus.CANCELLING:
        return
    _finish_cancel(job, get_executor(job.executor))


def _finish_cancel(job: Job, executor: Executor) -> None:
    try:
        stdout, stderr = executor.logs(job, tail=200)
    except ExecutorError:
        stdout, stderr = "", ""
    try:
        executor.cancel(job)
    except ExecutorUnavailable:
        return  # try again on the next cycle
    if transition(
        job,
        JobStatus.CANCELLED,
        expected=JobStatus.CANCELLING,
        stdout_tail=stdout[-LOG_TAIL_CHARS:],
        stderr_tail=stderr[-LOG_TAIL_CHARS:],
    ):
        _cleanup(executor, job)


# ---------------------------------------------------------------------------------- poll loop


def acquire_lease(name: str, holder: str, ttl: timedelta) -> bool:
    now = timezone.now()
    with contextlib.suppress(IntegrityError):
        Lease.objects.get_or_create(name=name, defaults={"expires_at": now})
    return (
        Lease.objects.filter(Q(expires_at__lte=now) | Q(holder=holder), name=name).update(
            holder=holder, expires_at=now + ttl
        )
        == 1
    )


def release_lease(name: str, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=timezone.now())


def poll_active() -> str:
    """The scheduled poll loop: one cluster at a time (lease), cycles every FERRY_POLL_INTERVAL_S
    for up to FERRY_POLL_LOOP_S seconds while jobs are active, then hands over to a fresh task."""
    holder = uuid.uuid4().hex
    ttl = timedelta(seconds=settings.FERRY_POLL_LEASE_S)
    if not acquire_lease(POLL_LEASE, holder, ttl):
        logger.info("poll: another worker holds the poll lease")
        return "another worker is polling"
    loop_for = float(settings.FERRY_POLL_LOOP_S)
    deadline = time.monotonic() + loop_for
    active = 0
    try:
        while True:
            active = poll_cycle()
            if not active or time.monotonic() >= deadline:
                break
            time.sleep(settings.FERRY_POLL_INTERVAL_S)
            if not acquire_lease(POLL_LEASE, holder, ttl):
                return "lost the poll lease"
    finally:
        release_lease(POLL_LEASE, holder)
    if active and loop_for > 0:
        queue.kick_poller()
    logger.info("poll: loop ended with %d active job(s)", active)
    return f"{active} active job(s)"
