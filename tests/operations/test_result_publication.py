"""A job's result Files become visible in the transaction of its success, and are removed when
the job ends otherwise (issue 11, item 3): a worker killed between storing the results and
the SUCCEEDED transition leaves nothing ready that its job did not produce."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from api import storage
from api.models import File, FileEvent, FileStatus, User, Workspace
from executors.base import Observation, RunState
from executors.registry import get_executor
from operations import runner
from operations.models import Job
from operations.services import build_run_spec
from operations.states import JobStatus
from operations.transitions import transition
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_echo_operation

pytestmark = pytest.mark.django_db


def finalizing_job(workspace: Workspace, owner: User) -> Job:
    """A job whose container ran and whose worker stored its results, then was killed before
    the SUCCEEDED transition."""
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    operation = make_echo_operation()
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=owner,
        executor="local-docker",
        run_spec=build_run_spec(operation, {"text": "hello"}),
    )
    runner.submit_job(str(job.pk))
    executor = get_executor(job.executor)
    deadline = time.monotonic() + 60
    while executor.poll([job]).get(job.id, Observation(RunState.MISSING)).state != RunState.EXITED:
        assert time.monotonic() < deadline, "the container did not finish"
        time.sleep(0.2)
    job.refresh_from_db()
    assert transition(job, JobStatus.RUNNING, expected=JobStatus.SUBMITTED)
    assert transition(job, JobStatus.FINALIZING, expected=JobStatus.RUNNING)
    runner.register_outputs(job, executor.collect(job))  # ... then SIGKILL
    return job


def listed_ids(client: APIClient, url: str) -> set[str]:
    return {row["id"] for row in client.get(url).json()["results"]}


def test_results_are_hidden_until_the_job_succeeds(
    workspace: Workspace,
    users: dict[str, User],
    client_for: Callable[[str], APIClient],
) -> None:
    job = finalizing_job(workspace, users["owner"])
    stored = File.objects.get(produced_by=job)
    owner, staff = client_for("owner"), client_for("staff")
    for client in (owner, staff):
        assert str(stored.pk) not in listed_ids(client, "/api/files/")
        assert str(stored.pk) not in listed_ids(client, f"/api/files/?workspace={workspace.pk}")
        assert client.get(f"/api/files/{stored.pk}/").status_code == 404
        assert client.get(f"/api/files/{stored.pk}/download/").status_code == 404
        shown = client.get(f"/api/jobs/{job.pk}/").json()
        assert shown["status"] == "finalizing"
        assert shown["output_files"] == []

    runner.finalize_job(str(job.pk))  # the restarted worker finalizes it again

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    published = File.objects.get(produced_by=job)  # the same File, once
    assert published.pk == stored.pk
    assert published.status == FileStatus.READY
    assert [e.payload["to"] for e in FileEvent.objects.filter(file=published)] == ["ready"]
    assert job.outputs == {"said": str(stored.pk)}
    download = owner.get(f"/api/files/{stored.pk}/download/")
    assert b"".join(cast(Iterator[bytes], download.streaming_content)) == b"hello\n"  # type: ignore[attr-defined]
    assert str(stored.pk) in listed_ids(owner, "/api/files/")
    assert owner.get(f"/api/files/{stored.pk}/download/").status_code == 200
    assert [f["id"] for f in owner.get(f"/api/jobs/{job.pk}/").json()["output_files"]] == [
        str(stored.pk)
    ]


def test_results_of_a_job_cancelled_while_finalizing_are_removed(
    workspace: Workspace,
    users: dict[str, User],
    client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finalizing_job(workspace, users["owner"])
    stored = File.objects.get(produced_by=job)
    assert Path(storage.local_path(stored.storage_uri)).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("owner").post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code in (200, 202), response.content

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert not File.objects.filter(produced_by=job).exists()
    assert not Path(storage.local_path(stored.storage_uri)).exists()
    runner.finalize_job(str(job.pk))  # a late finalize of the dead worker changes nothing
    assert not File.objects.filter(produced_by=job).exists()
