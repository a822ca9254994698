"""Jobs: create (validate, record, enqueue after commit) and cancel."""

from __future__ import annotations

import shlex
from typing import Any, cast

from django.conf import settings
from django.db import transaction

from api.exceptions import ApplicationError, Conflict, Forbidden, field_error
from api.models import WRITE_ROLES, User
from api.selectors import role_in, workspaces_visible_to
from executors.specs import ResourceLimits, RunSpec

from . import queue
from .inputs import container_values, validate_inputs
from .models import CROMWELL_ALIAS_PREFIX, Event, Job, Operation, OperationMode
from .states import TERMINAL, JobStatus
from .transitions import transition


def executor_alias_for(operation: Operation, requested: str | None = None) -> str:
    """The executor a new job of ``operation`` runs on: the one asked for (it must run the
    operation's mode) or the server's routing for that mode."""
    from executors.registry import executor_class

    alias = requested or settings.EXECUTOR_ROUTING.get(operation.mode)
    where = "executor" if requested else "operation"
    if not alias:
        raise ApplicationError(
            f"No executor is configured for {operation.mode} operations on this server.",
            code="no_executor",
            status_code=503,
        )
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


def build_run_spec(operation: Operation, values: dict[str, Any]) -> RunSpec:
    from .spec import render_argv, render_command

    spec = operation.spec
    if operation.mode == OperationMode.WDL:
        from .wdl_runs import build_wdl_run_spec

        return build_wdl_run_spec(operation, values)
    if operation.mode != OperationMode.DOCKER:
        raise ApplicationError(
            f"{operation.mode} operations can't run on this server.", code="mode_unsupported"
        )
    rendered, mounts = container_values(spec, values)
    try:
        if spec.get("command_style") == "webmev":
            # Until the WebMEV run contract runs the argv itself: each word shell-quoted.
            command = shlex.join(render_argv(spec, rendered))
        else:
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
            name
            for name, out in spec.get("outputs", {}).items()
            if out.get("type") == "file"
            or (out.get("type") == "list" and out.get("items", {}).get("type") == "file")
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
    workspace = workspaces_visible_to(user).filter(pk=workspace_id).first()
    if workspace is None:
        raise field_error(
            "workspace", f"No workspace {workspace_id} that you can see.", code="does_not_exist"
        )
    if role_in(user, workspace) not in WRITE_ROLES:
        raise Forbidden(
            "Viewers cannot run operations in this workspace.",
            details={"workspace": ["Your role in this workspace is viewer."]},
        )
    if operation.hidden:
        raise field_error(
            "operation", f"The operation {operation.name} {operation.version} is retired."
        )
    values = validate_inputs(operation.spec, inputs, user=user)
    alias = executor_alias_for(operation, executor)
    with transaction.atomic():
        job = Job.objects.create(
            operation=operation,
            workspace=workspace,
            owner=user,
            inputs=values,
            executor=alias,
            run_spec=build_run_spec(operation, values),
            status=JobStatus.QUEUED,
        )
        Event.objects.create(
            workspace=workspace,
            job=job,
            kind="job.status",
            payload={"job": str(job.pk), "from": None, "to": "queued", "terminal": False},
        )
        transaction.on_commit(lambda: queue.enqueue_submit(job.pk))
    return job


def job_cancel(*, user: User, job: Job) -> Job:
    role = role_in(user, job.workspace)
    if role not in WRITE_ROLES and job.owner_id != user.pk:
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
