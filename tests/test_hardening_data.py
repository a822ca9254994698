"""Data that must not leak or disappear, tried by hostile users:

- a String input naming another user's stored object is never staged, localized, cleaned up
  or accepted as an output file;
- imports never reach another workspace's objects (removed members, strangers), and a shared
  import location can't overlap workspace storage;
- once a direct upload is complete, no URL Ferry handed out changes the stored bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from api.models import File, User, Workspace
from api.services import workspace_create
from executors.miniwdl import OUTPUTS_JSON, RUN_SUBDIR, MiniwdlExecutor
from operations import runner
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_wdl_operation
from tests.test_jobs import run_job
from tests.test_wdl_cromwell_jobs import (  # noqa: F401 - fixtures
    EXECUTOR,
    FIXTURES,
    RUN_TIMEOUT_S,
    cromwell,
    keys_under,
    read_object,
    server_record,
    site_bucket,
    upload,
    var_dir,
)

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer


# ----------------------------------------------------------------- 1. String inputs are strings


@pytest.mark.slow
@pytest.mark.django_db
def test_a_string_input_naming_another_users_object_survives_the_job(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    workspace: Workspace,
    server_record: dict[str, Any],  # noqa: F811
    cromwell: CromwellServer,  # noqa: F811
    site_bucket: str,  # noqa: F811
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """User B runs a Cromwell job whose String input is the URI of user A's stored file: the
    job's clean-up used to delete every input URI it had not staged from a file input."""
    victim = File.objects.get(pk=upload(client_for("owner"), workspace, "a.txt", b"A's data\n"))
    assert victim.storage_uri.startswith(f"s3://{site_bucket}/")
    attacker = client_for("other")
    own = workspace_create(user=users["other"], name="B's")
    table = upload(attacker, own, "b.txt", b"1\n2\n")
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    body = {
        "operation": str(operation.pk),
        "workspace": str(own.pk),
        "inputs": {"tables": [table], "label": victim.storage_uri},
        "executor": EXECUTOR,
    }
    created = run_job(attacker, body, django_capture_on_commit_callbacks)
    job = Job.objects.get(pk=created["id"])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, f"job still {job.status}"
        runner.poll_cycle()
        job.refresh_from_db()
        time.sleep(0.3)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert read_object(moto_server, victim.storage_uri) == b"A's data\n"
    assert job.run_spec["staged"] and all(
        uri.startswith(f"s3://{cromwell.bucket}/ferry-inputs/{job.pk}/")
        for uri in job.run_spec["staged"]
    )
    # Ferry's own copy of B's input was removed.
    assert keys_under(moto_server, cromwell.bucket, f"ferry-inputs/{job.pk}/") == []


@pytest.mark.django_db
def test_cleanup_of_a_run_prepared_before_the_fix_spares_what_ferry_did_not_stage(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    workspace: Workspace,
    make_file: Callable[..., File],
) -> None:
    """A job prepared by an older version may list a String input's URI as "staged": clean-up
    deletes only objects under the job's own staging prefix that no File stands for."""
    from operations.wdl_runs import remove_staged_inputs

    victim = make_file(workspace, b"keep me\n")
    path = Path(victim.storage_uri.removeprefix("file://"))
    assert path.is_file()
    job = Job.objects.create(
        workspace=workspace,
        owner=users["other"],
        executor="cromwell:old",
        status=JobStatus.FAILED,
        run_spec={"mode": "wdl", "staged": [victim.storage_uri]},
    )
    remove_staged_inputs(job, "s3://cromwell-bucket/in/")
    remove_staged_inputs(job, None)
    assert path.read_bytes() == b"keep me\n"


def test_miniwdl_outputs_never_name_a_host_file_given_as_a_string_input(tmp_path: Path) -> None:
    """A run without file inputs (``input_files`` empty) whose String input names a host file
    can't return that file as an output: only the run's own files and its listed inputs."""
    victim = tmp_path / "someone-elses.txt"
    victim.write_text("private\n")
    executor = MiniwdlExecutor(
        "test-miniwdl", {"work_root": str(tmp_path / "work"), "defaults": {"timeout_s": 60}}
    )

    class StandIn:
        id = uuid.uuid4()
        run_spec = {
            "workflow_name": "leak",
            "inputs": {"leak.path": str(victim)},
            "input_files": [],
            "outputs": {"f": {"type": "file", "many": False}},
        }

    job = StandIn()
    run_root = executor.run_dir(job) / RUN_SUBDIR
    run_root.mkdir(parents=True)
    (run_root / OUTPUTS_JSON).write_text(json.dumps({"leak.f": str(victim)}))
    collected = executor.collect(job)
    assert not collected.succeeded
    assert "outside the run" in collected.error_message
