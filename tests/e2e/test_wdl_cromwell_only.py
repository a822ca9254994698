"""A workflow Cromwell accepts and miniwdl refuses (a draft-2 declaration named ``left``, a
keyword for miniwdl) is added for Cromwell servers only when a registered server's describe
accepts it: miniwdl's refusal shown, its signature from the description, its jobs run on Cromwell
and refused on miniwdl. Refused when the server refuses it too, or can't be asked.

The Cromwell test server runs workflows with miniwdl, so the test registers Cromwell's answer for
the document and a runnable stand-in (tests/cromwell_server/documents.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.ingestion import ingest_operation
from operations.models import CROMWELL_ANY, Job, Operation
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXECUTOR = "cromwell:keywords"

# Draft-2, as Cromwell's own test cases write it; miniwdl stops at line 3 ("unexpected keyword").
TALLY = """task tally {
  File words
  String left = basename(words)
  command {
    echo "${left}" > tally.txt
    cat ${words} >> tally.txt
  }
  output {
    File tallied = "tally.txt"
  }
  runtime { docker: "ferry/busybox:latest" }
}

workflow sides {
  File words
  call tally { input: words = words }
  output {
    File tallied = tally.tallied
  }
}
"""
# What the test server runs in its place (the same workflow, the declaration renamed).
TALLY_RUNNABLE = TALLY.replace("String left", "String left_side").replace("${left}", "${left_side}")
# What Cromwell's describe answers for it (shapes as in Cromwell's API description).
TALLY_DESCRIBED = {
    "name": "sides",
    "inputs": [
        {
            "name": "sides.words",
            "valueType": {"typeName": "File"},
            "typeDisplayName": "File",
            "optional": False,
            "default": None,
        },
    ],
    "outputs": [
        {"name": "sides.tallied", "valueType": {"typeName": "File"}, "typeDisplayName": "File"}
    ],
    "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": "draft-2"},
}


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return Path(settings.FERRY_VAR_DIR)


@pytest.fixture
def cromwell(cromwell_server: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_server.start()
    cromwell_server.reset()
    yield cromwell_server
    cromwell_server.start()  # a test stops it
    cromwell_server.reset()


def _register(
    staff: APIClient, cromwell: CromwellServer, moto_server: S3Server, settings: Any
) -> dict[str, Any]:
    bucket = f"ws-{uuid.uuid4().hex[:10]}"
    client = moto_server.boto3_client()
    client.create_bucket(Bucket=bucket)
    client.close()
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(moto_server.config()).items() if v is not None}
    }
    settings.FERRY_IMPORT_LOCATIONS = [f"s3://{cromwell.bucket}/"]
    response = staff.post(
        "/api/cromwell-servers/",
        {
            "name": EXECUTOR.removeprefix("cromwell:"),
            "url": cromwell.url,
            "options": {
                "inputs_location": f"s3://{cromwell.bucket}/ferry-inputs/",
                "outputs_location": f"s3://{cromwell.bucket}/",
                "retries": 0,
                "timeouts": {"connect": 3, "read": 5},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return dict(response.json())


def _folder(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.wdl").write_text(text)
    return folder


def _add(staff: APIClient, folder: Path) -> Any:
    return staff.post("/api/operations/", {"source": str(folder)}, format="json")


def test_added_for_cromwell_only_runs_there_and_is_refused_on_miniwdl(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    cromwell: CromwellServer,
    moto_server: S3Server,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    staff, editor = client_for("staff"), client_for("editor")
    # Without a registered Cromwell server: miniwdl's refusal, as it always was.
    alone = _add(staff, _folder(tmp_path, "alone", TALLY))
    assert alone.status_code == 400, alone.json()
    assert alone.json()["code"] == "invalid_workflow"
    assert alone.json()["details"]["workflow"][0].startswith("main.wdl:3:3: ")
    assert "cromwell" not in alone.json()["details"]

    registered = _register(staff, cromwell, moto_server, settings)
    cromwell.know_document(TALLY, TALLY_DESCRIBED, TALLY_RUNNABLE)
    folder = _folder(tmp_path, "sides", TALLY)
    added = _add(staff, folder)
    assert added.status_code == 201, added.json()
    progress: list[str] = []  # what `ferry_add_operation` prints (the same again: no new row)
    assert ingest_operation(str(folder), progress=progress.append)[1] is False
    assert any(line.startswith("Warning: miniwdl") for line in progress), progress
    operation = Operation.objects.get(pk=added.json()["id"])
    assert operation.executors == [CROMWELL_ANY]
    refusal = operation.spec["wdl"]["miniwdl_refuses"]
    assert refusal[0].startswith("main.wdl:3:3: ")
    assert "left" in refusal[0]
    assert operation.spec["wdl"]["accepted_by"] == [EXECUTOR]
    assert "Warning: miniwdl" in operation.build_log
    assert refusal[0] in operation.build_log
    assert set(operation.spec["inputs"]) == {"words"}
    assert operation.spec["inputs"]["words"]["required"] is True
    assert operation.spec["outputs"]["tallied"]["type"] == "file"
    shown = editor.get(f"/api/operations/{operation.pk}/").json()  # users see why, too
    assert shown["executors"] == [CROMWELL_ANY]
    assert shown["spec"]["wdl"]["miniwdl_refuses"] == refusal

    upload = editor.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=words.txt",
        b"ab\ncd\n",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert upload.status_code == 201, upload.content
    body = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {"words": upload.json()["id"]},
    }
    on_miniwdl = editor.post("/api/jobs/", {**body, "executor": "local-miniwdl"}, format="json")
    assert on_miniwdl.status_code == 400, on_miniwdl.json()
    assert on_miniwdl.json()["code"] == "executor_not_allowed"
    assert "miniwdl refuses its workflow" in on_miniwdl.json()["message"]
    assert EXECUTOR in on_miniwdl.json()["message"]

    # Routed to Cromwell. The server's describe is gone meanwhile (a gateway that doesn't pass
    # it): the job is not checked with miniwdl instead, which refuses it.
    cromwell.faults(no_describe=True)
    created = run_job(editor, body, django_capture_on_commit_callbacks)
    assert created["executor"] == EXECUTOR
    job = wait_terminal(created["id"], timeout=150)
    cromwell.faults(no_describe=False)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    tallied = File.objects.get(pk=job.outputs["tallied"])
    assert tallied.storage_uri.startswith(settings.FERRY_STORAGE_LOCATION)
    content = editor.get(f"/api/files/{tallied.pk}/download/")
    assert content.status_code in (200, 302)

    # No Cromwell server taking jobs: a 409 saying what to do, never a 500.
    drained = staff.patch(
        f"/api/cromwell-servers/{registered['id']}/", {"state": "draining"}, format="json"
    )
    assert drained.status_code == 200, drained.json()
    refused = editor.post("/api/jobs/", body, format="json")
    assert refused.status_code == 409, refused.json()
    assert refused.json()["code"] == "no_cromwell_server"
    assert "registers one" in refused.json()["message"]
    assert Job.objects.count() == 1


def test_refused_when_cromwell_refuses_too_or_cannot_be_asked(
    client_for: Callable[[str], APIClient],
    cromwell: CromwellServer,
    moto_server: S3Server,
    settings: Any,
    tmp_path: Path,
) -> None:
    staff = client_for("staff")
    _register(staff, cromwell, moto_server, settings)
    folder = _folder(tmp_path, "sides", TALLY)
    # The server's describe refuses it too (here: miniwdl's own check, not registered).
    both = _add(staff, folder)
    assert both.status_code == 400, both.json()
    assert both.json()["code"] == "invalid_workflow"
    assert both.json()["details"]["workflow"][0].startswith("main.wdl:3:3: ")
    (cromwell_says,) = both.json()["details"]["cromwell"]
    assert cromwell_says.startswith(f"{EXECUTOR}: ")
    assert "refuses it too" in cromwell_says
    assert "refuse it too" in both.json()["message"]

    # Accepted, but with an output Ferry can't type (draft-2's field-less Object).
    untyped = TALLY.replace("workflow sides", "workflow untyped")
    outputs = [{"name": "untyped.o", "valueType": {"typeName": "Object"}}]
    cromwell.know_document(untyped, {"name": "untyped", "outputs": outputs}, TALLY_RUNNABLE)
    refused = _add(staff, _folder(tmp_path, "untyped", untyped))
    assert refused.status_code == 400, refused.json()
    assert refused.json()["details"]["cromwell"] == [
        f"{EXECUTOR}: output o: type Object can't be an operation type"
    ]

    cromwell.faults(delay_s=60)  # answering too slowly: given up after the read timeout (5 s)
    started = time.monotonic()
    slow = _add(staff, folder)
    assert time.monotonic() - started < 30
    assert slow.status_code == 400, slow.json()
    assert "could not be asked" in slow.json()["details"]["cromwell"][0]
    cromwell.faults(delay_s=0)

    cromwell.stop()  # down while the operation is added: a clear refusal within the timeouts
    started = time.monotonic()
    down = _add(staff, folder)
    assert time.monotonic() - started < 60
    assert down.status_code == 400, down.json()
    (cromwell_says,) = down.json()["details"]["cromwell"]
    assert "could not be asked" in cromwell_says
    assert "unreachable" in cromwell_says
    assert "try again when" in down.json()["message"]
    assert not Operation.objects.exists()
