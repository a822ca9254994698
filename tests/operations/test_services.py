"""operations/services.py called directly (no HTTP): executor routing, run specs, creating a job
(who may, in which workspace, with what inputs) and cancelling one (who may, from which status).
Nothing runs: the tasks a create or cancel enqueues after commit are captured, not executed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from api import services as api_services
from api.exceptions import ApplicationError, Conflict, Forbidden
from api.models import File, Role, User, Workspace
from executors.specs import DockerRunSpec
from operations.models import CromwellServer, Event, Job, Operation, OperationMode, ServerState
from operations.services import build_run_spec, executor_alias_for, job_cancel, job_create
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation, make_operation

pytestmark = pytest.mark.django_db


def wdl_operation() -> Operation:
    """A WDL catalog entry as far as routing reads it (its mode)."""
    return Operation.objects.create(
        name="wf", version="1", revision="wf", mode=OperationMode.WDL, spec={}, source="tests"
    )


def copy_operation() -> Operation:
    return make_operation(
        "copy",
        "cat {{ table }} > copy.tsv # {{ label }}",
        inputs={
            "table": {"type": "file", "file_types": ["table"], "required": True},
            "label": {"type": "string", "required": False, "default": "a copy"},
        },
        outputs={"copy": {"type": "file", "file_type": "table"}},
        resources={"memory_mb": 64},
    )


# -------------------------------------------------------------------------------------- routing


def test_each_mode_goes_to_its_routed_executor() -> None:
    assert executor_alias_for(make_echo_operation()) == "local-docker"
    assert executor_alias_for(wdl_operation()) == "local-miniwdl"


def test_an_executor_asked_for_is_used_when_it_runs_the_mode() -> None:
    assert executor_alias_for(make_echo_operation(), "dummy") == "dummy"  # runs any mode
    assert executor_alias_for(wdl_operation(), "local-miniwdl") == "local-miniwdl"


def test_an_unknown_executor_is_named_in_the_executor_field() -> None:
    with pytest.raises(ApplicationError) as refused:
        executor_alias_for(make_echo_operation(), "nowhere")

    assert refused.value.code == "does_not_exist"
    assert refused.value.details == {"executor": ["No executor named 'nowhere' on this server."]}


def test_an_executor_of_another_mode_is_refused_by_the_field_that_chose_it(settings: Any) -> None:
    with pytest.raises(ApplicationError) as asked:
        executor_alias_for(make_echo_operation(), "local-miniwdl")
    assert list(asked.value.details) == ["executor"]

    settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "wdl": "local-docker"}
    with pytest.raises(ApplicationError) as routed:
        executor_alias_for(wdl_operation())
    assert routed.value.details == {
        "operation": ["The executor local-docker does not run wdl operations."]
    }


@pytest.mark.parametrize("routing", [{}, {"docker": "gone"}])
def test_a_mode_without_a_configured_executor_is_a_503(
    routing: dict[str, str], settings: Any
) -> None:
    settings.EXECUTOR_ROUTING = routing

    with pytest.raises(ApplicationError) as refused:
        executor_alias_for(make_echo_operation())

    assert (refused.value.status_code, refused.value.code) == (503, "no_executor")


def test_a_cromwell_server_runs_wdl_only_and_only_while_active() -> None:
    server = CromwellServer.objects.create(name="c1", url="http://127.0.0.1:9")
    wdl, docker = wdl_operation(), make_echo_operation()

    assert executor_alias_for(wdl, "cromwell:c1") == "cromwell:c1"
    with pytest.raises(ApplicationError, match="runs only WDL operations"):
        executor_alias_for(docker, "cromwell:c1")
    with pytest.raises(ApplicationError, match="No Cromwell server named 'c2'"):
        executor_alias_for(wdl, "cromwell:c2")

    CromwellServer.objects.filter(pk=server.pk).update(state=ServerState.DRAINING)
    with pytest.raises(ApplicationError) as draining:
        executor_alias_for(wdl, "cromwell:c1")
    assert (draining.value.status_code, draining.value.code) == (409, "executor_draining")


# ------------------------------------------------------------------------------------ run specs


def test_a_docker_run_spec_mounts_file_inputs_read_only_and_quotes_values(
    workspace: Workspace, file: File
) -> None:
    values = {"table": str(file.pk), "label": "it's mine"}
    run_spec = cast(DockerRunSpec, build_run_spec(copy_operation(), values))

    target = f"/inputs/table/{file.name}"
    assert run_spec["image"] == "ferry/busybox:latest"
    assert run_spec["command"] == f"cat {target} > copy.tsv # 'it'\"'\"'s mine'"
    assert [m["target"] for m in run_spec["mounts"]] == [target]
    assert run_spec["limits"] == {"memory_mb": 64}
    assert run_spec["requires_outputs_json"] is True
    assert run_spec["file_outputs"] == ["copy"]


def test_a_mode_this_server_cannot_run_is_refused() -> None:
    operation = make_echo_operation()
    operation.mode = "webmev"

    with pytest.raises(ApplicationError) as refused:
        build_run_spec(operation, {"text": "hi"})

    assert refused.value.code == "mode_unsupported"


# ---------------------------------------------------------------------------------- job_create


@pytest.mark.parametrize("role", ["owner", "editor", "staff"])
def test_writers_create_a_queued_job_and_its_submit_is_enqueued_after_commit(
    role: str,
    users: dict[str, User],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        job = job_create(
            user=users[role],
            operation=make_echo_operation(),
            workspace_id=workspace.pk,
            inputs={"text": "hello"},
        )

    job.refresh_from_db()
    assert (job.status, job.owner, job.workspace) == (JobStatus.QUEUED, users[role], workspace)
    assert (job.executor, job.inputs) == ("local-docker", {"text": "hello"})
    assert job.run_spec["command"].startswith("echo hello > said.txt")
    assert list(Event.objects.filter(job=job).values_list("payload", flat=True)) == [
        {"job": str(job.pk), "from": None, "to": "queued", "terminal": False}
    ]
    assert len(enqueued) == 1


def test_viewers_may_not_run_operations(users: dict[str, User], workspace: Workspace) -> None:
    with pytest.raises(Forbidden) as refused:
        job_create(
            user=users["viewer"],
            operation=make_echo_operation(),
            workspace_id=workspace.pk,
            inputs={"text": "x"},
        )

    assert refused.value.details == {"workspace": ["Your role in this workspace is viewer."]}
    assert not Job.objects.exists()


def test_a_stranger_is_told_there_is_no_such_workspace(
    users: dict[str, User], workspace: Workspace
) -> None:
    with pytest.raises(ApplicationError) as refused:
        job_create(
            user=users["other"],
            operation=make_echo_operation(),
            workspace_id=workspace.pk,
            inputs={"text": "x"},
        )

    assert refused.value.code == "does_not_exist"
    assert list(refused.value.details) == ["workspace"]
    assert not Job.objects.exists()


def test_a_retired_operation_takes_no_new_jobs(
    users: dict[str, User], workspace: Workspace
) -> None:
    operation = make_echo_operation()
    Operation.objects.filter(pk=operation.pk).update(hidden=True)
    operation.refresh_from_db()

    with pytest.raises(ApplicationError, match="is retired") as refused:
        job_create(user=users["owner"], operation=operation, workspace_id=workspace.pk, inputs={})

    assert list(refused.value.details) == ["operation"]


def test_inputs_are_checked_by_path_before_anything_is_written(
    users: dict[str, User], workspace: Workspace
) -> None:
    with pytest.raises(ApplicationError) as refused:
        job_create(
            user=users["owner"],
            operation=make_echo_operation(),
            workspace_id=workspace.pk,
            inputs={"text": "x", "extra": 1},
        )

    assert refused.value.code == "invalid_inputs"
    assert "inputs.extra" in refused.value.details
    assert not Job.objects.exists()
    assert not Event.objects.filter(kind__startswith="job.").exists()  # nor a job event


def test_a_file_of_a_workspace_the_user_cannot_read_is_no_input(
    users: dict[str, User], workspace: Workspace, make_file: Callable[..., File]
) -> None:
    elsewhere = api_services.workspace_create(user=users["other"], name="Elsewhere")
    theirs = make_file(elsewhere, owner=users["other"], name="theirs.tsv", file_type="table")

    with pytest.raises(ApplicationError) as refused:
        job_create(
            user=users["editor"],
            operation=copy_operation(),
            workspace_id=workspace.pk,
            inputs={"table": str(theirs.pk)},
        )

    assert refused.value.code == "invalid_inputs"
    assert "inputs.table" in refused.value.details
    assert not Job.objects.exists()


# ---------------------------------------------------------------------------------- job_cancel


def a_job(workspace: Workspace, owner: User, status: JobStatus = JobStatus.QUEUED) -> Job:
    return Job.objects.create(
        operation=make_echo_operation(), workspace=workspace, owner=owner, status=status
    )


@pytest.mark.parametrize("role", ["owner", "editor", "staff"])
def test_writers_cancel_any_job_of_the_workspace(
    role: str,
    users: dict[str, User],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = a_job(workspace, users["editor"], JobStatus.RUNNING)

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        cancelled = job_cancel(user=users[role], job=job)

    assert Job.objects.get(pk=job.pk).status == cancelled.status == JobStatus.CANCELLING
    assert Event.objects.get(job=job).payload["from"] == "running"
    assert len(enqueued) == 1


def test_the_jobs_owner_may_cancel_it_after_being_made_a_viewer(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = a_job(workspace, users["editor"])
    membership = workspace.memberships.get(user=users["editor"])
    api_services.member_update(membership=membership, role=Role.VIEWER)

    assert job_cancel(user=users["editor"], job=job).status == JobStatus.CANCELLING


@pytest.mark.parametrize("role", ["viewer", "other"])
def test_viewers_and_strangers_may_not_cancel_others_jobs(
    role: str, users: dict[str, User], workspace: Workspace
) -> None:
    job = a_job(workspace, users["owner"])

    with pytest.raises(Forbidden):
        job_cancel(user=users[role], job=job)

    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED
    assert not Event.objects.filter(job=job).exists()


def test_cancelling_a_job_twice_enqueues_one_cancel(
    users: dict[str, User], workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    job = a_job(workspace, users["owner"], JobStatus.CANCELLING)

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert job_cancel(user=users["owner"], job=job).status == JobStatus.CANCELLING

    assert enqueued == []
    assert not Event.objects.filter(job=job).exists()


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_finished_job_cannot_be_cancelled(
    status: JobStatus, users: dict[str, User], workspace: Workspace
) -> None:
    job = a_job(workspace, users["owner"], status)

    with pytest.raises(Conflict) as refused:
        job_cancel(user=users["owner"], job=job)

    assert refused.value.code == "job_finished"
    assert str(status) in refused.value.message


def test_cancel_reads_the_jobs_current_status_not_a_stale_copy(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = a_job(workspace, users["owner"])
    stale = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)

    with pytest.raises(Conflict):
        job_cancel(user=users["owner"], job=stale)
