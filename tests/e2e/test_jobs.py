"""Jobs end to end on a real Docker engine: API → services → worker tasks → executor → Files."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import pytest
from rest_framework.test import APIClient

from api.models import File, FileStatus, User, Workspace
from operations import leases, runner
from operations.models import Event, Job
from operations.states import TERMINAL, JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_echo_operation, make_operation

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


def run_job(client: APIClient, body: dict[str, Any], capture: Any) -> dict[str, Any]:
    with capture(execute=True):
        response = client.post("/api/jobs/", body, format="json")
    assert response.status_code == 201, response.json()
    return dict(response.json())


def wait_terminal(job_id: str, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll_cycle()
        job = Job.objects.get(pk=job_id)
        if JobStatus(job.status) in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(
        f"job {job_id} still {Job.objects.get(pk=job_id).status} after {timeout} s"
    )


def test_echo_job_end_to_end(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_echo_operation()
    client = client_for("editor")
    literal = "x; rm -rf / $(touch /work/pwned) `id` 'quoted'"
    job = run_job(
        client,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"text": literal},
        },
        django_capture_on_commit_callbacks,
    )
    assert job["status"] in ("queued", "submitted", "running")
    done = wait_terminal(job["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    result = File.objects.get(pk=done.outputs["said"])
    assert result.produced_by_id == done.pk
    assert result.workspace_id == workspace.pk
    assert result.status == FileStatus.READY
    assert result.file_type == "text"
    body = client.get(f"/api/files/{result.pk}/download/")
    assert b"".join(body.streaming_content).decode() == literal + "\n"  # type: ignore[attr-defined]
    detail = client.get(f"/api/jobs/{done.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["outputs"] == {"said": str(result.pk)}
    assert [f["id"] for f in detail["output_files"]] == [str(result.pk)]
    kinds = list(Event.objects.filter(job=done).values_list("payload__to", flat=True))
    assert kinds == ["queued", "submitted", "running", "finalizing", "succeeded"]
    assert (
        docker.from_env().containers.list(all=True, filters={"label": f"ferry.job={done.pk}"}) == []
    )


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({}, "inputs.text"),
        ({"text": 5}, "inputs.text"),
        ({"text": "a", "extra": 1}, "inputs.extra"),
    ],
)
def test_bad_inputs_are_400_by_field(
    inputs: dict[str, Any], field: str, client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    operation = make_echo_operation()
    response = client_for("owner").post(
        "/api/jobs/",
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": inputs},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"], response.json()
    assert not Job.objects.exists()


def test_typed_inputs_and_files(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    users: dict[str, User],
    make_file: Callable[..., File],
) -> None:
    from api import services

    operation = make_operation(
        "typed",
        "true",
        inputs={
            "n": {"type": "integer", "min": 1, "max": 10, "required": True},
            "ratio": {"type": "float", "min": 0.0, "max": 1.0, "default": 0.5, "required": False},
            "how": {"type": "option", "choices": ["mean", "median"], "required": True},
            "flag": {"type": "boolean", "required": True},
            "table": {"type": "file", "file_types": ["table"], "required": True},
        },
    )
    mine = make_file(workspace, data=b"a\tb\n1\t2\n", name="t.tsv")
    text = make_file(workspace, data=b"hello\n", name="n.txt")
    broken = make_file(workspace, data=b"a\tb\n1\n", name="broken.tsv")
    elsewhere = services.workspace_create(user=users["other"], name="Other")
    theirs = make_file(elsewhere, data=b"a\tb\n1\t2\n", name="theirs.tsv", owner=users["other"])
    client = client_for("owner")

    def post(**inputs: Any) -> Any:
        base = {"n": 3, "how": "mean", "flag": True, "table": str(mine.pk)}
        return client.post(
            "/api/jobs/",
            {
                "operation": str(operation.pk),
                "workspace": str(workspace.pk),
                "inputs": {**base, **inputs},
            },
            format="json",
        )

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"n": 11}, "inputs.n", "above the maximum 10"),
        ({"n": 2.5}, "inputs.n", "integer"),
        ({"n": True}, "inputs.n", "integer"),
        ({"ratio": 2}, "inputs.ratio", "above the maximum"),
        ({"how": "max"}, "inputs.how", "not one of the choices"),
        ({"flag": "yes"}, "inputs.flag", "true or false"),
        ({"table": str(text.pk)}, "inputs.table", "takes table"),
        ({"table": str(broken.pk)}, "inputs.table", "invalid"),
        ({"table": str(theirs.pk)}, "inputs.table", "that you can see"),
        ({"table": "nope"}, "inputs.table", "UUID"),
    ]
    for inputs, field, words in cases:
        response = post(**inputs)
        assert response.status_code == 400, (inputs, response.json())
        assert words in " ".join(response.json()["details"][field]), (inputs, response.json())
    ok = post()
    assert ok.status_code == 201, ok.json()
    assert ok.json()["inputs"] == {
        "n": 3,
        "ratio": 0.5,
        "how": "mean",
        "flag": True,
        "table": str(mine.pk),
    }
    assert (
        client_for("viewer")
        .post(
            "/api/jobs/",
            {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
            format="json",
        )
        .status_code
        == 403
    )


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("echo boom >&2; exit 3", "exited with status 3"),
        ("true", "outputs.json"),
        ("""echo '{"said": "nothere.txt"}' > outputs.json""", "nothere.txt"),
    ],
    ids=["exit-3", "no-outputs-json", "names-missing-file"],
)
def test_failures_are_readable(
    command: str,
    words: str,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_operation(
        "fails", command, outputs={"said": {"type": "file", "file_type": "text"}}
    )
    job = run_job(
        client_for("owner"),
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"])
    assert done.status == JobStatus.FAILED
    assert words in done.error_message, done.error_message
    assert not File.objects.filter(produced_by=done).exists()


def test_missing_image_fails_clearly(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_operation("ghost", "true", image="ferry-op/does-not-exist:1")
    job = run_job(
        client_for("owner"),
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    done = Job.objects.get(pk=job["id"])
    assert done.status == JobStatus.FAILED
    assert "not available" in done.error_message


def test_cancel_really_stops_the_container(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_operation("sleepy", "echo started; sleep 120")
    client = client_for("owner")
    job = run_job(
        client,
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    engine = docker.from_env()
    label: dict[str, str | list[str] | bool] = {"label": f"ferry.job={job['id']}"}
    assert engine.containers.list(all=True, filters=label)
    deadline = time.monotonic() + 10
    while "started" not in client.get(f"/api/jobs/{job['id']}/logs/").json()["stdout"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/jobs/{job['id']}/cancel/")
    assert response.status_code == 202
    done = wait_terminal(job["id"], timeout=15)
    assert done.status == JobStatus.CANCELLED
    assert engine.containers.list(all=True, filters=label) == []
    assert "started" in client.get(f"/api/jobs/{job['id']}/logs/").json()["stdout"]
    again = client.post(f"/api/jobs/{job['id']}/cancel/")
    assert again.status_code == 409
    assert again.json()["code"] == "job_finished"


def test_job_list_filters(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    operation = make_echo_operation()
    Job.objects.create(
        operation=operation, workspace=workspace, owner=users["owner"], status=JobStatus.FAILED
    )
    Job.objects.create(
        operation=operation, workspace=workspace, owner=users["owner"], status=JobStatus.SUCCEEDED
    )
    client = client_for("viewer")
    assert len(client.get("/api/jobs/").json()["results"]) == 2
    assert [j["status"] for j in client.get("/api/jobs/?status=failed").json()["results"]] == [
        "failed"
    ]
    assert client.get("/api/jobs/?status=bogus").status_code == 400
    assert client_for("other").get("/api/jobs/").json()["results"] == []


def test_poll_lease_is_held_by_one_worker_at_a_time() -> None:
    from datetime import timedelta

    ttl = timedelta(seconds=30)
    assert leases.acquire("t", "a", ttl)
    assert not leases.acquire("t", "b", ttl)
    assert leases.acquire("t", "a", ttl)  # renewal by the holder
    leases.release("t", "a")
    assert leases.acquire("t", "b", timedelta(seconds=0))
    assert leases.acquire("t", "c", ttl)  # b's lease expired at once


def test_poll_active_runs_a_cycle(workspace: Workspace, users: dict[str, User]) -> None:
    operation = make_echo_operation()
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        executor="local-docker",
        status=JobStatus.SUBMITTED,
        run_spec={},
    )
    # Its container never existed: the cycle must notice and fail the job with a reason.
    assert runner.poll_active() == "0 active job(s)"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "disappeared" in job.error_message


def test_input_files_are_mounted_read_only(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    make_file: Callable[..., File],
    django_capture_on_commit_callbacks: Any,
) -> None:
    table = make_file(workspace, data=b"a\tb\n1\t2\n", name="in put.tsv")
    outputs_json = """'{"copy": "copy.tsv"}'"""
    operation = make_operation(
        "copy",
        f"cat {{{{ table }}}} > copy.tsv && ! touch {{{{ table }}}} && echo {outputs_json} > outputs.json",
        inputs={"table": {"type": "file", "file_types": ["table"], "required": True}},
        outputs={"copy": {"type": "file", "file_type": "table"}},
    )
    job = run_job(
        client_for("owner"),
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"table": str(table.pk)},
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    copy = File.objects.get(pk=done.outputs["copy"])
    assert copy.sha256 == table.sha256
    assert copy.name == "copy.tsv"
    assert copy.status == FileStatus.READY


def test_operation_without_outputs_needs_no_outputs_json(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_operation("noop", "true")
    job = run_job(
        client_for("owner"),
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"])
    assert done.status == JobStatus.SUCCEEDED, done.error_message
    assert done.outputs == {}
