"""A job goes through Ferry (API, worker tasks, poll loop, finalize) on the dummy executor
with nothing but a settings change: what any new executor's module gets to rely on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import File, FileStatus, Workspace
from executors import dummy
from operations.models import Event
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.operations_fixtures import make_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed_to_dummy(settings: Any, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Docker operations run on a dummy executor whose runs follow ``script`` (its files
    written under ``tmp_path / "dummy"``)."""

    def route(**script: Any) -> None:
        options = {"script": script, "work_root": str(tmp_path / "dummy")}
        settings.EXECUTORS = {
            **settings.EXECUTORS,
            "dummy": {"BACKEND": "executors.dummy.DummyExecutor", "OPTIONS": options},
        }
        settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "docker": "dummy"}

    yield route
    dummy.reset()


def counting_operation() -> Any:
    return make_operation(
        "count",
        "never run",
        outputs={"count": {"type": "integer", "description": ""}},
    )


def test_a_job_succeeds_with_the_values_of_its_script(
    routed_to_dummy: Callable[..., None],
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    routed_to_dummy(polls=2, values={"count": 3})
    body = {"operation": str(counting_operation().pk), "workspace": str(workspace.pk)}
    job = run_job(client_for("editor"), {**body, "inputs": {}}, django_capture_on_commit_callbacks)

    done = wait_terminal(job["id"], timeout=30)

    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.executor == "dummy"
    assert done.outputs == {"count": 3}
    kinds = list(Event.objects.filter(job=done).values_list("payload__to", flat=True))
    assert kinds == ["queued", "submitted", "running", "finalizing", "succeeded"]
    assert dummy.runs("dummy") == {}  # cleaned up


def test_a_failing_run_fails_the_job_with_its_message(
    routed_to_dummy: Callable[..., None],
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    routed_to_dummy(outcome="fail", message="no lines to count")
    body = {"operation": str(counting_operation().pk), "workspace": str(workspace.pk)}
    job = run_job(client_for("editor"), {**body, "inputs": {}}, django_capture_on_commit_callbacks)

    done = wait_terminal(job["id"], timeout=30)

    assert done.status == JobStatus.FAILED
    assert "no lines to count" in done.error_message


def test_a_run_until_cancelled_is_cancelled_with_its_logs(
    routed_to_dummy: Callable[..., None],
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    routed_to_dummy(outcome="run", stdout="started\n")
    client = client_for("owner")
    body = {"operation": str(counting_operation().pk), "workspace": str(workspace.pk)}
    job = run_job(client, {**body, "inputs": {}}, django_capture_on_commit_callbacks)
    assert "started" in client.get(f"/api/jobs/{job['id']}/logs/").json()["stdout"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/jobs/{job['id']}/cancel/")

    assert response.status_code == 202
    done = wait_terminal(job["id"], timeout=30)
    assert done.status == JobStatus.CANCELLED


def test_a_job_stores_the_files_of_its_script(
    routed_to_dummy: Callable[..., None],
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    routed_to_dummy(files={"said": {"said.txt": "hello\n"}})
    operation = make_operation(
        "say", "never run", outputs={"said": {"type": "file", "description": ""}}
    )
    body = {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}}
    job = run_job(client_for("editor"), body, django_capture_on_commit_callbacks)

    done = wait_terminal(job["id"], timeout=30)

    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    stored = File.objects.get(pk=done.outputs["said"])
    assert (stored.name, stored.size, stored.status) == ("said.txt", 6, FileStatus.READY)
    download = client_for("editor").get(f"/api/files/{stored.pk}/download/")
    assert b"".join(download.streaming_content) == b"hello\n"  # type: ignore[attr-defined]
    assert not (tmp_path / "dummy" / str(done.pk)).exists()  # removed once stored
