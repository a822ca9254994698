"""Each decision has one home, tested here directly (not through HTTP): which operations a user
sees, whether a workspace is writable, which executor runs a mode, which values are files, the
Cromwell job label, a job's logs and an operation's retirement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from api.exceptions import ApplicationError, Forbidden
from api.models import User, Workspace
from api.selectors import may_write, members_of, workspaces_listed_for, writable_workspace
from executors import dummy
from executors.cromwell.executor import JOB_LABEL, workflow_labels
from executors.registry import ExecutorNotConfigured, alias_for_mode, executor_for_mode
from operations import services
from operations.models import Job
from operations.selectors import operations_visible_to
from operations.states import JobStatus
from tests.operations_fixtures import make_operation
from wdl.outputs import file_refs_of, is_file_output

pytestmark = pytest.mark.django_db


@pytest.fixture
def dummy_routing(settings: Any) -> Iterator[None]:
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "dummy": {"BACKEND": "executors.dummy.DummyExecutor", "OPTIONS": {}},
    }
    settings.EXECUTOR_ROUTING = {"docker": "dummy"}
    yield
    dummy.reset()


def test_retired_operations_are_seen_by_staff_only(users: dict[str, User]) -> None:
    shown = make_operation("shown", "true")
    retired = make_operation("retired", "true")
    services.operation_update(operation=retired, hidden=True)

    assert set(operations_visible_to(users["editor"])) == {shown}
    assert set(operations_visible_to(users["staff"])) == {shown, retired}
    assert set(operations_visible_to(None)) == {shown}  # schema generation: no user


def test_operation_update_retires_and_restores(users: dict[str, User]) -> None:
    operation = make_operation("op", "true")
    assert services.operation_update(operation=operation, hidden=True).hidden is True
    assert services.operation_update(operation=operation, hidden=False).hidden is False


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("owner", True), ("editor", True), ("staff", True), ("viewer", False), ("other", False)],
)
def test_who_may_write_a_workspace(
    users: dict[str, User], workspace: Workspace, role: str, allowed: bool
) -> None:
    assert may_write(users[role], workspace) is allowed


def test_writable_workspace_refuses_viewers_and_hides_from_strangers(
    users: dict[str, User], workspace: Workspace
) -> None:
    assert writable_workspace(users["editor"], workspace.pk) == workspace

    with pytest.raises(Forbidden) as refused:
        writable_workspace(users["viewer"], workspace.pk, doing="run operations")
    assert refused.value.message == "Viewers cannot run operations in this workspace."
    assert refused.value.details == {"workspace": ["Your role in this workspace is viewer."]}

    with pytest.raises(ApplicationError) as unknown:
        writable_workspace(users["other"], workspace.pk, field="target")
    assert unknown.value.status_code == 400
    assert list(unknown.value.details) == ["target"]


def test_one_routing_function_for_modes(settings: Any, dummy_routing: None) -> None:
    assert alias_for_mode("docker") == "dummy"
    assert executor_for_mode("docker").alias == "dummy"
    with pytest.raises(ExecutorNotConfigured):
        alias_for_mode("wdl")
    operation = make_operation("routed", "true")
    assert services.executor_alias_for(operation) == "dummy"
    settings.EXECUTOR_ROUTING = {}
    with pytest.raises(ApplicationError) as none:
        services.executor_alias_for(operation)
    assert none.value.status_code == 503


def test_which_values_are_files() -> None:
    specs: dict[str, dict[str, Any]] = {
        "one": {"type": "file"},
        "many": {"type": "list", "items": {"type": "file"}},
        "nested": {"type": "list", "items": {"type": "list", "items": {"type": "file"}}},
        "number": {"type": "integer"},
        "words": {"type": "list", "items": {"type": "string"}},
        "absent": {"type": "file"},
    }
    values = {
        "one": "a",
        "many": ["b", "c"],
        "nested": [["d"], []],
        "number": 3,
        "words": ["x"],
        "absent": None,
    }
    assert [name for name, spec in specs.items() if is_file_output(spec)] == [
        "one",
        "many",
        "nested",
        "absent",
    ]
    assert file_refs_of(specs, values) == ["a", "b", "c", "d"]


def test_the_docker_run_spec_lists_file_outputs_by_the_vocabulary(users: dict[str, User]) -> None:
    operation = make_operation(
        "outs",
        "true",
        outputs={
            "one": {"type": "file", "description": ""},
            "rows": {"type": "list", "items": {"type": "file"}, "description": ""},
            "count": {"type": "integer", "description": ""},
        },
    )
    spec = services.build_run_spec(operation, {})
    assert spec["file_outputs"] == ["one", "rows"]  # type: ignore[typeddict-item]


def test_the_cromwell_job_label_is_set_in_one_place() -> None:
    job_id = UUID("12345678-1234-5678-1234-567812345678")
    labels = workflow_labels(job_id, {"project": 7, JOB_LABEL: "forged"})
    assert labels == {"project": "7", JOB_LABEL: str(job_id)}


def test_job_logs_are_live_while_running_and_kept_afterwards(
    users: dict[str, User], workspace: Workspace, dummy_routing: None
) -> None:
    operation = make_operation("logs", "true")
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["editor"],
        inputs={},
        executor="dummy",
        run_spec={"dummy": {"outcome": "run", "stdout": "1\n2\n3\n"}},
        status=JobStatus.RUNNING,
        stdout_tail="kept 1\nkept 2\n",
        stderr_tail="",
    )
    executor = executor_for_mode("docker")
    job.external_id = executor.submit(job)
    job.save(update_fields=["external_id"])

    assert services.job_logs(job=job, tail=2) == {"stdout": "2\n3\n", "stderr": "", "live": True}

    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    job.refresh_from_db()
    assert services.job_logs(job=job, tail=1) == {"stdout": "kept 2", "stderr": "", "live": False}

    # A running job whose executor can't answer falls back to the kept tails.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, executor="nowhere")
    job.refresh_from_db()
    assert services.job_logs(job=job)["live"] is False


def test_workspaces_are_listed_with_the_users_role_and_file_count(
    users: dict[str, User], workspace: Workspace, make_file: Any
) -> None:
    make_file(workspace)
    listed = {ws.pk: ws for ws in workspaces_listed_for(users["viewer"])}
    assert set(listed) == {workspace.pk}
    shown = listed[workspace.pk]
    assert (getattr(shown, "my_role"), getattr(shown, "file_count")) == ("viewer", 1)  # noqa: B009
    assert not workspaces_listed_for(users["other"]).exists()
    assert {m.user.email for m in members_of(workspace)} == {
        "owner@example.org",
        "editor@example.org",
        "viewer@example.org",
    }
