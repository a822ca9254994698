"""WDL jobs end to end on miniwdl (the embedded default): API → worker → miniwdl on the local
Docker engine → outputs stored as Files with provenance, locally and in a bucket."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.harness.buckets import S3Server
from tests.harness.docker import ensure_busybox_image, ensure_docker, ensure_swarm
from tests.operations_fixtures import TEST_IMAGE, make_wdl_operation

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "wdl_fixtures"


@pytest.fixture(scope="session", autouse=True)
def wdl_engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    ensure_swarm()


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    """Ingested workflows are kept under FERRY_VAR_DIR: one per test."""
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return settings.FERRY_VAR_DIR


def _upload(client: APIClient, workspace: Workspace, name: str, data: bytes) -> str:
    response = client.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name={name}",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_wdl_scatter_over_files_on_miniwdl(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    client = client_for("editor")
    tables = [
        _upload(client, workspace, "a.txt", b"1\n2\n3\n"),
        _upload(client, workspace, "b.txt", b"x\n"),
    ]
    job = run_job(
        client,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"tables": tables, "label": "n"},
        },
        django_capture_on_commit_callbacks,
    )
    assert job["executor"] == "local-miniwdl"
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.outputs["counts"] == [3, 1]
    summary = File.objects.get(pk=done.outputs["summary"])
    assert summary.produced_by_id == done.pk
    body = client.get(f"/api/files/{summary.pk}/download/")
    assert b"".join(body.streaming_content).strip() == b"n: 3,1"  # type: ignore[attr-defined]


def test_failing_wdl_task_is_named_with_its_exit_status(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(FIXTURES / "failing_task")
    job = run_job(
        client_for("owner"),
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.FAILED
    assert "fail" in done.error_message
    assert "exit status 1" in done.error_message
    assert "failing on purpose" in done.error_message + done.stderr_tail + done.error_detail


def test_wdl_job_with_bucket_inputs_and_results(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    settings: Any,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bucket = f"wdl-{uuid.uuid4().hex[:8]}"
    moto_server.boto3_client().create_bucket(Bucket=bucket)
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(moto_server.config()).items() if v is not None}
    }
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    client = client_for("owner")
    table = _upload(client, workspace, "a.txt", b"1\n2\n")
    assert File.objects.get(pk=table).storage_uri.startswith(f"s3://{bucket}/")
    job = run_job(
        client,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"tables": [table]},
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    summary = File.objects.get(pk=done.outputs["summary"])
    assert summary.storage_uri.startswith(
        f"s3://{bucket}/ferry/workspaces/{workspace.pk}/jobs/{done.pk}/summary/"
    )
    key = summary.storage_uri.split("/", 3)[3]
    got = moto_server.boto3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert got.strip() == b"lines: 2"


def test_cancelling_a_wdl_job_stops_miniwdl_and_its_tasks(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from operations import runner
    from operations.models import Job

    folder = tmp_path / "sleepy"
    folder.mkdir()
    (folder / "main.wdl").write_text(
        "version 1.0\n"
        "workflow sleepy {\n  call nap\n  output { Int done = nap.done }\n}\n"
        "task nap {\n  command <<<\n    sleep 120; echo 1\n  >>>\n"
        "  output { Int done = read_int(stdout()) }\n"
        '  runtime { docker: "ferry/busybox:latest" }\n}\n'
    )
    operation = make_wdl_operation(folder)
    client = client_for("owner")
    job = run_job(
        client,
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    from executors.registry import get_executor

    executor: Any = get_executor("local-miniwdl")
    run_dir = executor.run_dir(Job.objects.get(pk=job["id"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the task's container runs
        runner.poll_cycle()
        if executor.leftovers(run_dir)[1]:
            break
        time.sleep(0.5)
    assert executor.leftovers(run_dir)[1], "the task never started"
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client.post(f"/api/jobs/{job['id']}/cancel/")
    assert cancelled.status_code == 202, cancelled.content
    done = wait_terminal(job["id"], timeout=60)
    assert done.status == JobStatus.CANCELLED
    services, containers = executor.leftovers(run_dir)
    assert not services
    assert not [c for c in containers if c.status == "running"]
