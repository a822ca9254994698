"""Public-WDL shapes added as operations and run as jobs on miniwdl (real Docker): a workflow
whose call leaves an input unset (Cromwell's hello), and a document of one task, no workflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.harness.docker import ensure_busybox_image, ensure_docker, ensure_swarm
from tests.operations_fixtures import TEST_IMAGE, make_wdl_operation

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

HELLO = """version 1.0

task hello {
  input {
    String addressee
    String greeting = "Hello"
  }
  command <<<
    echo "~{greeting} ~{addressee}!"
  >>>
  output {
    String salutation = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

workflow wf_hello {
  call hello
  output {
    String salutation = hello.salutation
  }
}
"""

# Cromwell's canonical hello in draft-2: the call leaves addressee unset, and the output is named
# by its call (the engines report it as wf_hello.hello.salutation).
HELLO_DRAFT2 = """task hello {
  String addressee
  command {
    echo "Hello ${addressee}!"
  }
  output {
    String salutation = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

workflow wf_hello {
  call hello
  output {
    hello.salutation
  }
}
"""

ONE_TASK = """version 1.0

task shout {
  input {
    File words
    Int times = 1
  }
  command <<<
    for i in $(seq 1 ~{times}); do tr a-z A-Z < '~{words}'; done > loud.txt
  >>>
  output {
    File loud = "loud.txt"
    Int lines = length(read_lines("loud.txt"))
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
"""


@pytest.fixture(scope="module", autouse=True)
def wdl_engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    ensure_swarm()


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return settings.FERRY_VAR_DIR


def _source(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.wdl").write_text(text)
    return folder


def test_hello_with_its_call_input_unset_runs_with_it_given(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(_source(tmp_path, "hello", HELLO))
    assert operation.spec["inputs"]["hello__addressee"]["required"] is True
    assert operation.spec["inputs"]["hello__greeting"]["default"] == "Hello"
    assert operation.spec["wdl"]["engine_names"] == {
        "hello__addressee": "hello.addressee",
        "hello__greeting": "hello.greeting",
    }
    client = client_for("editor")
    body = {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}}
    refused = client.post("/api/jobs/", body, format="json")
    assert refused.status_code == 400, refused.json()
    assert "hello__addressee" in str(refused.json())
    body["inputs"] = {"hello__addressee": "Ada", "hello__greeting": "Hi"}
    job = run_job(client, body, django_capture_on_commit_callbacks)
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.run_spec["inputs"] == {
        "wf_hello.hello.addressee": "Ada",
        "wf_hello.hello.greeting": "Hi",
    }
    assert done.outputs["salutation"] == "Hi Ada!"


def test_a_document_of_one_task_runs_as_an_operation(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(_source(tmp_path, "shout", ONE_TASK))
    assert operation.name == "shout"
    assert sorted(operation.spec["inputs"]) == ["times", "words"]
    assert sorted(operation.spec["outputs"]) == ["lines", "loud"]
    client = client_for("editor")
    response = client.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=words.txt",
        b"ab\ncd\n",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    body = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {"words": response.json()["id"], "times": 2},
    }
    job = run_job(client, body, django_capture_on_commit_callbacks)
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.outputs["lines"] == 4
    loud = File.objects.get(pk=done.outputs["loud"])
    assert loud.produced_by_id == done.pk
    data = client.get(f"/api/files/{loud.pk}/download/")
    assert b"".join(data.streaming_content) == b"AB\nCD\nAB\nCD\n"  # type: ignore[attr-defined]


def test_draft2_hello_with_its_output_named_by_the_call_runs(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_wdl_operation(_source(tmp_path, "hello2", HELLO_DRAFT2))
    assert list(operation.spec["outputs"]) == ["hello__salutation"]
    assert operation.spec["wdl"]["output_names"] == {"hello__salutation": "hello.salutation"}
    body = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {"hello__addressee": "m'Lord"},
    }
    job = run_job(client_for("editor"), body, django_capture_on_commit_callbacks)
    done = wait_terminal(job["id"], timeout=120)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.outputs == {"hello__salutation": "Hello m'Lord!"}
