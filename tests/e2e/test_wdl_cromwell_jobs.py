"""WDL jobs end to end on a Cromwell server (the test server of ``tests/cromwell_server``, which
really runs each workflow with miniwdl and leaves its outputs in an S3 bucket on moto):

API → inputs staged in the server's ``inputs_location`` → workflow submitted and polled in
batches → outputs relocated server-side into the workspace's bucket as Files with provenance.
Also: failures, routing, draining and removal of a server, a Cromwell that is down for a while,
and workers that die between submit and record, during relocation, and (SIGKILL) mid-job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from django.conf import settings as django_settings
from django_q.tasks import async_task
from rest_framework.test import APIClient

from api.models import File, User, Workspace
from api.services import file_register_object, workspace_create
from executors.base import RunState
from executors.registry import get_executor
from operations import runner
from operations.models import Event, Job
from operations.services import build_run_spec
from operations.states import JobStatus
from operations.transitions import transition
from operations.wdl_runs import prepare_wdl_run
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.e2e.test_worker_restart import kill_tree, start_worker, status_of, wait_for
from tests.operations_fixtures import make_wdl_operation

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "wdl_fixtures"
SERVER_NAME = "test"
EXECUTOR = f"cromwell:{SERVER_NAME}"
RUN_TIMEOUT_S = 120.0
SQUARES = [b"0\n", b"1\n", b"4\n"]  # the notes of tests/wdl_fixtures/scatter (count = 3)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    """Ingested workflows are kept under FERRY_VAR_DIR: one per test."""
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return Path(settings.FERRY_VAR_DIR)


@pytest.fixture
def cromwell(cromwell_server: CromwellServer) -> Iterator[CromwellServer]:
    """The real-runs server, running, without faults and with fresh counters (and after)."""
    cromwell_server.start()  # in case a test left it stopped
    cromwell_server.reset()
    yield cromwell_server
    cromwell_server.start()
    cromwell_server.reset()


@pytest.fixture
def site_bucket(settings: Any, moto_server: S3Server, cromwell: CromwellServer) -> str:
    """A fresh bucket on moto as the site's storage location; the Cromwell bucket registered
    as a location the site's (same) credentials read, so copies between them are server-side."""
    bucket = f"ws-{uuid.uuid4().hex[:10]}"
    client = moto_server.boto3_client()
    client.create_bucket(Bucket=bucket)
    client.close()
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(moto_server.config()).items() if v is not None}
    }
    settings.FERRY_IMPORT_LOCATIONS = [f"s3://{cromwell.bucket}/"]
    return bucket


@pytest.fixture
def server_record(
    client_for: Callable[[str], APIClient], cromwell: CromwellServer, site_bucket: str
) -> dict[str, Any]:
    """The Cromwell server registered through the staff API as ``cromwell:test``."""
    response = client_for("staff").post(
        "/api/cromwell-servers/",
        {
            "name": SERVER_NAME,
            "url": cromwell.url,
            "options": {
                "inputs_location": f"s3://{cromwell.bucket}/ferry-inputs/",
                "outputs_location": f"s3://{cromwell.bucket}/",
                "post_submit_grace_s": 30,
                "retries": 1,  # a stopped server is found unreachable quickly
                "backoff_s": 0.05,
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    record = dict(response.json())
    assert record["healthy"] is True, record["health_message"]
    assert record["executor"] == EXECUTOR
    return record


# ------------------------------------------------------------------------------------- helpers


def upload(client: APIClient, workspace: Workspace, name: str, data: bytes) -> str:
    response = client.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name={name}",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def job_body(operation: Any, workspace: Workspace, **extra: Any) -> dict[str, Any]:
    return {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}, **extra}


def read_object(moto_server: S3Server, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    client = moto_server.boto3_client()
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    finally:
        client.close()


def keys_under(moto_server: S3Server, bucket: str, prefix: str) -> list[str]:
    client = moto_server.boto3_client()
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    finally:
        client.close()
    return sorted(item["Key"] for item in listed.get("Contents", []))


def workflows_labelled(server: CromwellServer, job_id: Any) -> list[dict[str, Any]]:
    """What Cromwell's own query finds for the job's label (independent of Ferry's client)."""
    response = requests.get(
        f"{server.url}/api/workflows/v1/query",
        params={"label": f"ferry-job-id:{job_id}"},
        timeout=30,
    )
    response.raise_for_status()
    return list(response.json()["results"])


def poll_until(job_id: str, status: JobStatus, timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Run poll cycles until the job reaches ``status``."""
    deadline = time.monotonic() + timeout_s
    while Job.objects.get(pk=job_id).status != status:
        assert time.monotonic() < deadline, f"job {job_id} never reached {status}"
        runner.poll_cycle()
        time.sleep(0.2)


def finalizing_scatter_job(client: APIClient, workspace: Workspace, capture: Any) -> Job:
    """A scatter job whose workflow ended on Cromwell, moved to FINALIZING as a poll cycle
    does, but whose finalize task never ran (the worker died, or it is run by the test)."""
    operation = make_wdl_operation(FIXTURES / "scatter")
    created = run_job(client, job_body(operation, workspace, executor=EXECUTOR), capture)
    job = Job.objects.select_related("workspace", "owner").get(pk=created["id"])
    executor = get_executor(EXECUTOR)
    wait_for(
        lambda: executor.poll([job])[job.id].state is RunState.EXITED,
        RUN_TIMEOUT_S,
        "the workflow to end",
    )
    assert transition(job, JobStatus.RUNNING, expected=JobStatus.SUBMITTED)
    assert transition(job, JobStatus.FINALIZING, expected=JobStatus.RUNNING)
    return job


def job_folder(workspace: Workspace, job: Job) -> str:
    return f"ferry/workspaces/{workspace.pk}/jobs/{job.pk}/"


def assert_scatter_outputs(job: Job, moto_server: S3Server, bucket: str) -> None:
    """The scatter fixture's results: three notes relocated once each, as Files of the job."""
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.outputs["squares"] == [0, 1, 4]
    assert job.outputs["total"] == 5
    produced = File.objects.filter(produced_by=job)
    assert sorted(str(pk) for pk in produced.values_list("pk", flat=True)) == sorted(
        job.outputs["notes"]
    )
    notes = [File.objects.get(pk=pk) for pk in job.outputs["notes"]]
    assert [read_object(moto_server, note.storage_uri) for note in notes] == SQUARES
    assert keys_under(moto_server, bucket, job_folder(job.workspace, job)) == sorted(
        note.storage_uri.split("/", 3)[3] for note in notes
    )


# ------------------------------------------------------------------------------------- tests


@pytest.mark.django_db
def test_scatter_over_files_on_cromwell_lands_in_the_workspace_bucket(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    client = client_for("editor")
    tables = [
        upload(client, workspace, "a.txt", b"1\n2\n3\n"),
        upload(client, workspace, "b.txt", b"x\n"),
    ]
    assert all(
        File.objects.get(pk=t).storage_uri.startswith(f"s3://{site_bucket}/ferry/") for t in tables
    )
    created = run_job(
        client,
        job_body(operation, workspace, inputs={"tables": tables, "label": "n"}, executor=EXECUTOR),
        django_capture_on_commit_callbacks,
    )
    assert created["executor"] == EXECUTOR
    job = Job.objects.get(pk=created["id"])
    assert job.status == JobStatus.SUBMITTED
    assert job.external_id == str(job.pk)

    # The inputs were copied into the server's inputs_location, where its backend reads them.
    staged = job.run_spec["inputs"]["count_lines.tables"]
    prefix = f"s3://{cromwell.bucket}/ferry-inputs/{job.pk}/"
    assert len(staged) == 2
    assert all(uri.startswith(prefix) for uri in staged)
    assert [read_object(moto_server, uri) for uri in staged] == [b"1\n2\n3\n", b"x\n"]

    cromwell.reset()  # count only what following the job costs
    cycles = 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, f"job still {job.status}"
        runner.poll_cycle()
        cycles += 1
        job.refresh_from_db()
        time.sleep(0.3)

    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    counters = cromwell.counters()
    assert 1 <= counters["queryPost"] <= cycles  # one query per cycle (one page: one job)
    assert counters.get("status", 0) == 1  # only collect() asked for the status, once
    assert counters.get("outputs", 0) == 1

    assert job.outputs["counts"] == [3, 1]
    summary = File.objects.get(pk=job.outputs["summary"])
    assert summary.produced_by_id == job.pk
    assert summary.workspace_id == workspace.pk
    assert summary.storage_uri.startswith(
        f"s3://{site_bucket}/{job_folder(workspace, job)}summary/"
    )
    content = read_object(moto_server, summary.storage_uri)
    assert content.strip() == b"n: 3,1"
    assert summary.size == len(content)
    assert summary.md5 == hashlib.md5(content).hexdigest()  # noqa: S324 - S3's ETag
    assert summary.sha256 in ("", hashlib.sha256(content).hexdigest())

    # The relocated object is a copy of what Cromwell left in its own bucket (kept there).
    source = get_executor(EXECUTOR).client.outputs(str(job.pk))  # type: ignore[attr-defined]
    assert source["count_lines.summary"].startswith(f"s3://{cromwell.bucket}/")
    assert read_object(moto_server, source["count_lines.summary"]) == content

    shown = client.get(f"/api/jobs/{job.pk}/").json()
    assert shown["status"] == "succeeded"
    assert shown["executor_notice"] == ""
    assert [f["id"] for f in shown["output_files"]] == [str(summary.pk)]
    body = client.get(f"/api/files/{summary.pk}/download/")
    assert body.status_code in (200, 302)


@pytest.mark.django_db
def test_a_failing_task_names_the_call_and_its_return_code(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server_record: dict[str, Any],
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(FIXTURES / "failing_task")
    created = run_job(
        client_for("owner"),
        job_body(operation, workspace, executor=EXECUTOR),
        django_capture_on_commit_callbacks,
    )
    job = wait_terminal(created["id"], timeout=RUN_TIMEOUT_S)

    assert job.status == JobStatus.FAILED
    message = job.error_message
    assert message.startswith("The workflow failed in failing_task.fail (return code 1)"), message
    stderr_uri = message.split("Its stderr is at ", 1)[1].split(";", 1)[0].strip()
    assert b"failing on purpose" in read_object(moto_server, stderr_uri)
    assert "failing_task.fail" in job.error_detail
    assert "causedBy" in job.error_detail
    assert not File.objects.filter(produced_by=job).exists()


@pytest.mark.django_db
def test_routing_draining_and_removal_of_a_server(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "wdl": EXECUTOR}
    operation = make_wdl_operation(FIXTURES / "scatter")
    owner, staff = client_for("owner"), client_for("staff")
    server_url = f"/api/cromwell-servers/{server_record['id']}/"

    routed = run_job(owner, job_body(operation, workspace), django_capture_on_commit_callbacks)
    assert routed["executor"] == EXECUTOR
    assert Job.objects.get(pk=routed["id"]).status == JobStatus.SUBMITTED

    drained = staff.patch(server_url, {"state": "draining"}, format="json")
    assert drained.status_code == 200
    assert drained.json()["active_jobs"] == 1
    for body in (job_body(operation, workspace), job_body(operation, workspace, executor=EXECUTOR)):
        refused = owner.post("/api/jobs/", body, format="json")
        assert refused.status_code == 409, refused.json()
        assert refused.json()["code"] == "executor_draining"

    busy = staff.delete(server_url)
    assert busy.status_code == 409
    assert busy.json()["code"] == "server_busy"

    cancelled = owner.post(f"/api/jobs/{routed['id']}/cancel/")
    assert cancelled.status_code == 202, cancelled.json()
    job = wait_terminal(routed["id"], timeout=RUN_TIMEOUT_S)
    assert job.status == JobStatus.CANCELLED
    # The abort may have reached the workflow before its status shows (Cromwell's post-submit lag).
    wait_for(lambda: workflows_labelled(cromwell, job.pk) != [], 30, "the workflow to show")
    assert cromwell_status(cromwell, job.pk) in ("Aborting", "Aborted")

    assert staff.delete(server_url).status_code == 204
    assert staff.get(server_url).status_code == 404


@pytest.mark.django_db
def test_cromwell_down_for_a_while_leaves_jobs_waiting_then_they_finish(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.FERRY_RESUBMIT_AFTER_S = 1
    operation = make_wdl_operation(FIXTURES / "scatter")
    owner = client_for("owner")
    running = run_job(
        owner, job_body(operation, workspace, executor=EXECUTOR), django_capture_on_commit_callbacks
    )
    poll_until(running["id"], JobStatus.RUNNING)

    cromwell.stop()
    try:
        for _ in range(2):
            runner.poll_cycle()
        job = Job.objects.get(pk=running["id"])
        assert job.status == JobStatus.RUNNING  # not failed, not moved
        assert job.executor_unreachable_since is not None
        assert job.executor_unreachable_what == "The Cromwell server"
        assert f"Cromwell at {cromwell.url} unreachable" in job.error_detail
        notice = owner.get(f"/api/jobs/{job.pk}/").json()["executor_notice"]
        assert re.fullmatch(
            r"The Cromwell server is not answering \(since \d\d:\d\d UTC\); "
            r"the job will continue when it is back\.",
            notice,
        ), notice

        # A job created meanwhile waits in the queue with the same notice.
        queued = run_job(
            owner,
            job_body(operation, workspace, executor=EXECUTOR),
            django_capture_on_commit_callbacks,
        )
        waiting = Job.objects.get(pk=queued["id"])
        assert waiting.status == JobStatus.QUEUED
        assert waiting.attempts == 0
        assert waiting.executor_unreachable_since is not None
    finally:
        cromwell.start()  # it reruns the workflows it was running

    for job_id in (running["id"], queued["id"]):
        done = wait_terminal(job_id, timeout=RUN_TIMEOUT_S)
        assert done.error_detail == ""
        assert done.executor_unreachable_since is None
        assert_scatter_outputs(done, moto_server, site_bucket)
        assert done.attempts == 1
        assert len(workflows_labelled(cromwell, done.pk)) == 1
        assert owner.get(f"/api/jobs/{job_id}/").json()["executor_notice"] == ""


@pytest.mark.django_db
def test_a_worker_dying_between_submit_and_record_starts_no_second_workflow(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
) -> None:
    operation = make_wdl_operation(FIXTURES / "scatter")
    # Created without running the on-commit submit: the job waits in the queue...
    response = client_for("owner").post(
        "/api/jobs/", job_body(operation, workspace, executor=EXECUTOR), format="json"
    )
    assert response.status_code == 201, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.QUEUED
    # ...and a worker prepared and submitted it, then died before recording the submission.
    executor = get_executor(EXECUTOR)
    prepare_wdl_run(job, executor)
    executor.submit(job)
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED

    settings.FERRY_RESUBMIT_AFTER_S = 0
    runner.reconcile()  # the reconciler submits the stale queued job again: adopted
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED
    assert job.attempts == 1

    done = wait_terminal(str(job.pk), timeout=RUN_TIMEOUT_S)
    assert_scatter_outputs(done, moto_server, site_bucket)
    assert cromwell.counters()["submit"] == 2  # the lost one and the adopted repeat
    assert [w["id"] for w in workflows_labelled(cromwell, job.pk)] == [str(job.pk)]
    moves = list(Event.objects.filter(job=job).values_list("payload__to", flat=True))
    assert moves == ["queued", "submitted", "running", "finalizing", "succeeded"]


@pytest.mark.django_db
def test_a_worker_dying_during_relocation_leaves_no_duplicate_or_missing_file(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finalizing_scatter_job(client_for("owner"), workspace, django_capture_on_commit_callbacks)
    notes = get_executor(EXECUTOR).collect(job).remote_files["notes"]
    assert len(notes) == 3
    # It had registered the first note, and copied the second without recording it.
    first = file_register_object(
        uri=notes[0],
        workspace=job.workspace,
        owner=job.owner,
        name=notes[0].rsplit("/", 1)[-1],
        file_type=None,
        file_id=runner._result_file_id(job, "notes", 0),
        produced_by=job,
        key=runner._result_key(job, "notes", 0, notes[0]),
    )
    source_bucket, source_key = notes[1].removeprefix("s3://").split("/", 1)
    client = moto_server.boto3_client()
    client.copy_object(
        Bucket=site_bucket,
        Key="ferry/" + runner._result_key(job, "notes", 1, notes[1]),
        CopySource={"Bucket": source_bucket, "Key": source_key},
    )
    client.close()

    settings.FERRY_REFINALIZE_AFTER_S = 0
    runner.reconcile()  # finalizes the job the dead worker left

    job.refresh_from_db()
    assert_scatter_outputs(job, moto_server, site_bucket)
    assert job.outputs["notes"][0] == str(first.pk)
    runner.finalize_job(str(job.pk))  # a late repeat changes nothing
    assert File.objects.filter(produced_by=job).count() == 3


@pytest.mark.django_db
def test_cromwell_down_while_finalizing_fails_nothing(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finalizing_scatter_job(client_for("owner"), workspace, django_capture_on_commit_callbacks)
    cromwell.stop()
    try:
        runner.finalize_job(str(job.pk))  # outputs can't be asked for: try again later
        job.refresh_from_db()
        assert job.status == JobStatus.FINALIZING
        assert job.error_message == ""
    finally:
        cromwell.start()
    settings.FERRY_REFINALIZE_AFTER_S = 0
    runner.reconcile()
    job.refresh_from_db()
    assert_scatter_outputs(job, moto_server, site_bucket)


@pytest.mark.django_db
def test_outputs_in_an_unregistered_bucket_fail_the_job_with_a_reason(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finalizing_scatter_job(client_for("owner"), workspace, django_capture_on_commit_callbacks)
    settings.FERRY_IMPORT_LOCATIONS = []  # the admin forgot to register Cromwell's bucket

    runner.finalize_job(str(job.pk))

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert f"s3://{cromwell.bucket}/" in job.error_message
    assert not File.objects.filter(produced_by=job).exists()


@pytest.mark.django_db(transaction=True)
def test_sigkill_of_a_worker_following_a_cromwell_job(
    transactional_db: Any,
    storage_root: Path,
    users: dict[str, User],
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    site_bucket: str,
    moto_server: S3Server,
) -> None:
    workspace = workspace_create(user=users["owner"], name="Cromwell restart")
    operation = make_wdl_operation(slow_scatter(storage_root.parent / "slow_scatter"))
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        executor=EXECUTOR,
        run_spec=build_run_spec(operation, {}),
    )
    worker_env = {
        "FERRY_STORAGE_LOCATION": django_settings.FERRY_STORAGE_LOCATION,
        "FERRY_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "FERRY_S3_REGION": "us-east-1",
        "FERRY_S3_ACCESS_KEY_ID": moto_server.access_key_id,
        "FERRY_S3_SECRET_ACCESS_KEY": moto_server.secret_access_key,
        "FERRY_IMPORT_LOCATIONS": f"s3://{cromwell.bucket}/",
    }
    log = storage_root.parent / "workers.log"
    saved_env = {key: os.environ.get(key) for key in worker_env}
    os.environ.update(worker_env)  # start_worker passes the environment on
    try:
        first = start_worker(storage_root, log)
    finally:
        restore_env(saved_env)
    second: subprocess.Popen[bytes] | None = None
    try:
        async_task("operations.runner.submit_job", str(job.pk), sync=False)
        async_task("operations.runner.poll_active", sync=False)
        wait_for(lambda: status_of(job) == JobStatus.RUNNING, 60, "the job to run")
        kill_tree(first)  # SIGKILL the worker and its children while Cromwell runs the job
        assert cromwell_status(cromwell, job.pk) == "Running"
        time.sleep(3.5)  # the dead worker's poll lease expires
        os.environ.update(worker_env)
        try:
            second = start_worker(storage_root, log)
        finally:
            restore_env(saved_env)
        async_task("operations.runner.poll_active", sync=False)
        wait_for(lambda: status_of(job) == JobStatus.SUCCEEDED, 90, "the job to succeed")
    except AssertionError:
        print(log.read_text()[-20000:])
        raise
    finally:
        kill_tree(first)
        if second is not None:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_tree(second)
    job.refresh_from_db()
    assert_scatter_outputs(job, moto_server, site_bucket)
    assert job.attempts == 1
    assert len(workflows_labelled(cromwell, job.pk)) == 1
    moves = list(Event.objects.filter(job=job).values_list("payload__to", flat=True))
    assert moves == ["submitted", "running", "finalizing", "succeeded"]


def slow_scatter(folder: Path) -> Path:
    """The scatter fixture, with a gather step that takes a few seconds."""
    source = (FIXTURES / "scatter" / "main.wdl").read_text()
    assert source.count("total=0") == 1
    folder.mkdir(parents=True)
    (folder / "main.wdl").write_text(source.replace("total=0", "sleep 4\n    total=0"))
    return folder


def cromwell_status(server: CromwellServer, job_id: Any) -> str:
    response = requests.get(f"{server.url}/api/workflows/v1/{job_id}/status", timeout=30)
    response.raise_for_status()
    return str(response.json()["status"])


def restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.django_db
def test_outputs_outside_the_servers_outputs_location_are_refused(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Only what the engine wrote in its own output area is relocated into the workspace."""
    staff = client_for("staff")
    narrowed = staff.patch(
        f"/api/cromwell-servers/{server_record['id']}/",
        {"options": {"outputs_location": f"s3://{cromwell.bucket}/somewhere-else/"}},
        format="json",
    )
    assert narrowed.status_code == 200, narrowed.content
    job = finalizing_scatter_job(client_for("owner"), workspace, django_capture_on_commit_callbacks)
    runner.finalize_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "outside the executor's outputs_location" in job.error_message
    assert not File.objects.filter(produced_by=job).exists()


@pytest.mark.django_db
def test_submission_carries_labels_and_workflow_options(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server_record: dict[str, Any],
    cromwell: CromwellServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finalizing_scatter_job(client_for("owner"), workspace, django_capture_on_commit_callbacks)
    metadata = requests.get(
        f"{cromwell.url}/api/workflows/v1/{job.pk}/metadata",
        params={"includeKey": ["submittedFiles", "labels"]},
        timeout=30,
    ).json()
    options = json.loads(metadata["submittedFiles"]["options"])
    assert options["final_call_logs_dir"] == f"s3://{cromwell.bucket}/ferry-logs/{job.pk}/"
    assert metadata["labels"]["ferry-job-id"] == str(job.pk)
