"""Writes on jobs (create: validate, record, enqueue after commit; cancel; read live logs)
and on operations (retire, restore)."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import transaction

from api.events import record_event
from api.exceptions import ApplicationError, Conflict, Forbidden, field_error
from api.models import User
from api.selectors import may_write, writable_workspace
from executors.base import ExecutorError
from executors.registry import ExecutorNotConfigured, alias_for_mode, get_executor
from executors.specs import ResourceLimits, RunSpec
from wdl.outputs import is_file_output

from . import queue
from .inputs import container_values, execution_dir_values, validate_inputs
from .models import CROMWELL_ALIAS_PREFIX, Job, Operation, OperationMode
from .states import TERMINAL, JobStatus
from .transitions import transition


def executor_alias_for(operation: Operation, requested: str | None = None) -> str:
    """The executor a new job of ``operation`` runs on: the one asked for (it must run the
    operation's mode) or the server's routing for that mode; a Cromwell server for an operation
    only Cromwell accepts, never Cromwell for a draft-2 lone task (operations/engine_fit.py)."""
    from .engine_fit import cromwell_only, cromwell_only_alias, refuse_lone_draft2_task

    if cromwell_only(operation):
        routed = settings.EXECUTOR_ROUTING.get(operation.mode)
        requested = cromwell_only_alias(operation, requested, routed)
    alias = _mode_executor_alias(operation, requested)
    refuse_lone_draft2_task(operation, alias)
    return alias


def _mode_executor_alias(operation: Operation, requested: str | None) -> str:
    from executors.registry import executor_class

    try:
        alias = requested or alias_for_mode(operation.mode)
    except ExecutorNotConfigured as exc:
        raise ApplicationError(
            f"No executor is configured for {operation.mode} operations on this server.",
            code="no_executor",
            status_code=503,
        ) from exc
    where = "executor" if requested else "operation"
    if alias.startswith(CROMWELL_ALIAS_PREFIX) and alias not in settings.EXECUTORS:
        if operation.mode != OperationMode.WDL:
            raise field_error("executor", f"{alias} runs only WDL operations.")
        from .cromwell_servers import require_accepting

        require_accepting(alias)
        return str(alias)
    config = settings.EXECUTORS.get(alias)
    if config is None:
        if requested:
            raise field_error(
                "executor", f"No executor named {alias!r} on this server.", code="does_not_exist"
            )
        raise ApplicationError(
            f"No executor is configured for {operation.mode} operations on this server.",
            code="no_executor",
            status_code=503,
        )
    modes = executor_class(config.get("BACKEND")).modes
    if modes and operation.mode not in modes:
        raise field_error(where, f"The executor {alias} does not run {operation.mode} operations.")
    return str(alias)


def execution_dir_for(alias: str | None, job_id: uuid.UUID) -> str:
    """Where a job's WebMEV-style run keeps its inputs and outputs: the executor's work dir for
    the job (the Docker executor's ``<work_root>/<job id>``), the same path in the container."""
    from executors.registry import get_executor

    if alias:
        workdir = get_executor(alias).workdir_for(job_id)
        if workdir is not None:
            return str(workdir)
    return str(Path(settings.FERRY_WORK_ROOT) / "webmev" / str(job_id))


def build_webmev_run_spec(
    operation: Operation, values: dict[str, Any], *, job_id: uuid.UUID, exec_dir: str
) -> RunSpec:
    """WebMEV's run contract for local Docker (see docs/webmev.md)."""
    from .webmev import webmev_argv, webmev_file_outputs

    spec = operation.spec
    rendered, copies = execution_dir_values(spec, values, exec_dir=exec_dir, job_id=job_id)
    try:
        argv = webmev_argv(spec, rendered)
    except ValueError as exc:
        raise ApplicationError(
            f"The inputs can't be put into the operation's command: {exc}",
            details={"inputs": [str(exc)]},
        ) from exc
    file_outputs = webmev_file_outputs(spec)
    return {
        "image": operation.image,
        "contract": "webmev",
        "argv": argv,
        "command": shlex.join(argv),
        "exec_dir": exec_dir,
        "mounts": copies,
        "limits": cast(ResourceLimits, dict(spec.get("resources") or {})),
        "requires_outputs_json": bool(spec.get("outputs")),
        "file_outputs": list(file_outputs),
        "webmev_outputs": cast(Any, file_outputs),
    }


def build_run_spec(
    operation: Operation,
    values: dict[str, Any],
    *,
    job_id: uuid.UUID | None = None,
    executor_alias: str | None = None,
) -> RunSpec:
    from .spec import render_command
    from .webmev import runs_webmev_style

    spec = operation.spec
    if operation.mode == OperationMode.WDL:
        from .wdl_runs import build_wdl_run_spec

        return build_wdl_run_spec(operation, values)
    if operation.mode != OperationMode.DOCKER:
        raise ApplicationError(
            f"{operation.mode} operations can't run on this server.", code="mode_unsupported"
        )
    if runs_webmev_style(spec):
        job_id = job_id or uuid.uuid4()
        exec_dir = execution_dir_for(executor_alias, job_id)
        return build_webmev_run_spec(operation, values, job_id=job_id, exec_dir=exec_dir)
    rendered, mounts = container_values(spec, values)
    try:
        command = render_command(spec, rendered)
    except ValueError as exc:
        raise ApplicationError(
            f"The inputs can't be put into the operation's command: {exc}",
            details={"inputs": [str(exc)]},
        ) from exc
    return {
        "image": operation.image,
        "command": command,
        "mounts": mounts,
        "limits": cast(ResourceLimits, dict(spec.get("resources") or {})),
        "requires_outputs_json": bool(spec.get("outputs")),
        "file_outputs": [
            name for name, out in spec.get("outputs", {}).items() if is_file_output(out)
        ],
    }


def job_create(
    *,
    user: User,
    operation: Operation,
    workspace_id: Any,
    inputs: Any,
    executor: str | None = None,
) -> Job:
    workspace = writable_workspace(user, workspace_id, doing="run operations")
    if operation.hidden:
        raise field_error(
            "operation", f"The operation {operation.name} {operation.version} is retired."
        )
    values = validate_inputs(operation.spec, inputs, user=user, workspace=workspace)
    alias = executor_alias_for(operation, executor)
    job_id = uuid.uuid4()  # WebMEV-style runs name their execution dir after the job
    run_spec = build_run_spec(operation, values, job_id=job_id, executor_alias=alias)
    with transaction.atomic():
        job = Job.objects.create(
            id=job_id,
            operation=operation,
            workspace=workspace,
            owner=user,
            inputs=values,
            executor=alias,
            run_spec=run_spec,
            status=JobStatus.QUEUED,
        )
        record_event(
            workspace_id=workspace.pk,
            job_id=job.pk,
            kind="job.status",
            payload={"job": str(job.pk), "from": None, "to": "queued", "terminal": False},
        )
        transaction.on_commit(lambda: queue.enqueue_submit(job.pk, executor=alias))
    return job


def job_cancel(*, user: User, job: Job) -> Job:
    if not may_write(user, job.workspace) and job.owner_id != user.pk:
        raise Forbidden("Only the job's owner, editors and owners of its workspace can cancel it.")
    for _ in range(3):  # the job may move on while we try; retry from its new status
        job.refresh_from_db()
        if JobStatus(job.status) in TERMINAL:
            raise Conflict(f"The job has already {job.status}.", code="job_finished")
        if job.status == JobStatus.CANCELLING:
            return job
        if transition(job, JobStatus.CANCELLING):
            transaction.on_commit(lambda: queue.enqueue_cancel(job.pk))
            return job
    raise Conflict("The job changed state while cancelling; try again.", code="job_busy")


def _last_lines(text: str, tail: int | None) -> str:
    return text if tail is None else "\n".join(text.splitlines()[-tail:])


def job_logs(*, job: Job, tail: int | None = None) -> dict[str, Any]:
    """``{"stdout", "stderr", "live"}``: from the executor while the job runs (``live``), else
    (or when the executor can't answer) the tails kept on the job; the last ``tail`` lines of
    each if given."""
    if JobStatus(job.status) not in TERMINAL and job.external_id:
        try:
            stdout, stderr = get_executor(job.executor).logs(job, tail=tail)
            return {"stdout": stdout, "stderr": stderr, "live": True}
        except ExecutorError:
            pass  # fall back to what was kept
    return {
        "stdout": _last_lines(job.stdout_tail, tail),
        "stderr": _last_lines(job.stderr_tail, tail),
        "live": False,
    }


def operation_update(*, operation: Operation, hidden: bool) -> Operation:
    """Retire (``hidden``) or restore an operation; jobs already made keep running."""
    Operation.objects.filter(pk=operation.pk).update(hidden=hidden)
    operation.refresh_from_db()
    return operation
