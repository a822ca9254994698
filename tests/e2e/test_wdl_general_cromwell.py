"""The same public-WDL shapes on a Cromwell server (tests/cromwell_server, which runs what it is
sent with miniwdl): a call input the workflow leaves unset reaches Cromwell as
``wf.call.input``, as Cromwell's own inputs JSON names it; a draft-2 output named by its call
comes back under Ferry's name for it; a document of one task runs; a file inside a struct input
is staged into the server's inputs_location like any file input."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from api.models import Workspace
from operations import runner
from operations.models import Job
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job
from tests.e2e.test_wdl_general_runs import HELLO, HELLO_DRAFT2, ONE_TASK
from tests.operations_fixtures import make_wdl_operation

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXECUTOR = "cromwell:general"

STRUCT_INPUT = """version 1.0

struct Sample {
  String name
  File reads
}

workflow count_sample {
  input {
    Sample sample
  }
  call count { input: sample = sample }
  output {
    String line = count.line
  }
}

task count {
  input {
    Sample sample
  }
  command <<<
    echo "~{sample.name} $(wc -l < '~{sample.reads}')"
  >>>
  output {
    String line = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
"""


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return Path(settings.FERRY_VAR_DIR)


@pytest.fixture
def cromwell(cromwell_server: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_server.start()
    cromwell_server.reset()
    yield cromwell_server
    cromwell_server.reset()


@pytest.fixture
def server(
    client_for: Callable[[str], APIClient],
    cromwell: CromwellServer,
    moto_server: S3Server,
    settings: Any,
) -> None:
    bucket = f"ws-{uuid.uuid4().hex[:10]}"
    client = moto_server.boto3_client()
    client.create_bucket(Bucket=bucket)
    client.close()
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(moto_server.config()).items() if v is not None}
    }
    settings.FERRY_IMPORT_LOCATIONS = [f"s3://{cromwell.bucket}/"]
    response = client_for("staff").post(
        "/api/cromwell-servers/",
        {
            "name": "general",
            "url": cromwell.url,
            "options": {
                "inputs_location": f"s3://{cromwell.bucket}/ferry-inputs/",
                "outputs_location": f"s3://{cromwell.bucket}/",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def _operation(tmp_path: Path, name: str, text: str) -> Any:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.wdl").write_text(text)
    return make_wdl_operation(folder)


def _finish(job_ids: list[str], timeout_s: float = 150) -> list[Job]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [Job.objects.get(pk=job_id) for job_id in job_ids]
        if all(job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for job in jobs):
            return jobs
        assert time.monotonic() < deadline, [job.status for job in jobs]
        runner.poll_cycle()
        time.sleep(0.3)


def test_call_inputs_single_tasks_and_struct_inputs_on_cromwell(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server: None,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = client_for("editor")
    reads = []
    for name in ("words.txt", "reads.txt"):
        response = client.generic(
            "PUT",
            f"/api/files/upload/?workspace={workspace.pk}&name={name}",
            b"ab\ncd\n",  # type: ignore[arg-type]
            content_type="application/octet-stream",
        )
        assert response.status_code == 201, response.content
        reads.append(response.json()["id"])
    runs = [
        (_operation(tmp_path, "hello", HELLO), {"hello__addressee": "Ada"}),
        (_operation(tmp_path, "shout", ONE_TASK), {"words": reads[0]}),
        (
            _operation(tmp_path, "struct", STRUCT_INPUT),
            {"sample": {"name": "s1", "reads": reads[1]}},
        ),
        (_operation(tmp_path, "hello2", HELLO_DRAFT2), {"hello__addressee": "m'Lord"}),
    ]
    created = [
        run_job(
            client,
            {
                "operation": str(operation.pk),
                "workspace": str(workspace.pk),
                "inputs": inputs,
                "executor": EXECUTOR,
            },
            django_capture_on_commit_callbacks,
        )
        for operation, inputs in runs
    ]
    hello, shout, struct, hello2 = _finish([job["id"] for job in created])
    for job in (hello, shout, struct, hello2):
        assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert hello.run_spec["inputs"] == {
        "wf_hello.hello.addressee": "Ada",
        "wf_hello.hello.greeting": "Hello",  # the task's literal default, filled in by Ferry
    }
    assert hello.outputs["salutation"] == "Hello Ada!"
    assert shout.outputs["lines"] == 2
    staged = struct.run_spec["inputs"]["count_sample.sample"]["reads"]
    assert staged.startswith("s3://")
    assert "/ferry-inputs/" in staged
    assert struct.outputs["line"] == "s1 2"
    assert hello2.outputs == {"hello__salutation": "Hello m'Lord!"}


def test_a_cromwell_server_refusing_a_workflow_is_shown_when_it_is_added(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    server: None,
    cromwell: CromwellServer,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The server's womtool refuses what miniwdl accepts (mixed tabs and spaces in a command):
    # the operation is added (miniwdl runs it), with the disagreement in its check log; a job
    # sent to that server is refused when it starts, saying what the server said.
    refusal = "Failed to process task definition 'hello' (reason 1 of 1): mixed tabs and spaces"
    cromwell.faults(describe_refuses=refusal)
    # (a revision of its own: the server's verdict is remembered per operation revision)
    operation = _operation(tmp_path, "hello", HELLO + "\n# refused by the server\n")
    assert f"Warning: {EXECUTOR} refuses this workflow, which miniwdl accepts: {refusal}" in (
        operation.build_log
    )
    created = run_job(
        client_for("editor"),
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"hello__addressee": "Ada"},
            "executor": EXECUTOR,
        },
        django_capture_on_commit_callbacks,
    )
    (job,) = _finish([created["id"]])
    assert job.status == JobStatus.FAILED
    assert refusal in job.error_message

    cromwell.faults(describe_refuses="")
    accepted = _operation(tmp_path, "shout", ONE_TASK)
    assert f"{EXECUTOR} (Cromwell's describe) accepts the workflow too" in accepted.build_log
