"""Inputs (and outputs) of every WDL type through a real miniwdl run: a struct with a File and an
optional member, a Pair holding a File, a Map[String, File], an Array[Array[Int]] and an
Array[String?] and a Map[Int, String]. Each keeps its structure; the files inside are Ferry Files, given by id and
handed to the engine as files, and the files the run makes inside structures come back as Files."""

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

WORKFLOW = """version 1.0

struct Sample {
  String name
  File reads
  Int? depth
}

workflow structured {
  input {
    Sample sample
    Pair[String, File] tagged
    Map[String, File] by_name
    Array[Array[Int]] grid
    Array[String?] maybe_names
    Map[Int, String] codes
  }

  call describe {
    input:
      sample = sample,
      tagged = tagged,
      by_name = by_name,
      grid = grid,
      maybe_names = maybe_names
  }

  output {
    Sample echoed = sample
    Pair[Int, File] counted = (describe.total, describe.summary)
    Map[String, File] copies = describe.copies
    Array[Array[Int]] grid_out = grid
    Int? depth = sample.depth
    Map[Int, String] codes_out = codes
  }
}

task describe {
  input {
    Sample sample
    Pair[String, File] tagged
    Map[String, File] by_name
    Array[Array[Int]] grid
    Array[String?] maybe_names
  }
  command <<<
    set -e
    {
      echo "sample ~{sample.name} depth ~{default='none' sample.depth}"
      cat '~{sample.reads}'
      echo "tag ~{tagged.left}"
      cat '~{tagged.right}'
      echo "names ~{sep=',' select_all(maybe_names)}"
      echo "rows ~{length(grid)} first ~{grid[0][1]}"
    } > summary.txt
    mkdir copies
    cp '~{by_name["a"]}' copies/a.txt
    cp '~{by_name["b"]}' copies/b.txt
    echo ~{length(flatten(grid))}
  >>>
  output {
    File summary = "summary.txt"
    Int total = read_int(stdout())
    Map[String, File] copies = {"a": "copies/a.txt", "b": "copies/b.txt"}
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


def _upload(client: APIClient, workspace: Workspace, name: str, data: bytes) -> str:
    response = client.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name={name}",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def _text(client: APIClient, file_id: str) -> bytes:
    body = client.get(f"/api/files/{file_id}/download/")
    return b"".join(body.streaming_content)  # type: ignore[attr-defined]


def test_structured_inputs_and_outputs_keep_their_structure_on_miniwdl(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    folder = tmp_path / "structured"
    folder.mkdir()
    (folder / "main.wdl").write_text(WORKFLOW)
    operation = make_wdl_operation(folder)
    inputs = operation.spec["inputs"]
    assert inputs["sample"]["type"] == "struct"
    assert inputs["sample"]["members"]["depth"] == {"type": "integer", "optional": True}
    assert inputs["tagged"]["right"]["type"] == "file"
    assert inputs["by_name"]["values"]["type"] == "file"
    assert inputs["grid"] == {
        "type": "list",
        "items": {"type": "list", "items": {"type": "integer"}},
        "description": "",
        "required": True,
        "default": None,
    }
    assert inputs["maybe_names"]["items"] == {"type": "string", "optional": True}
    assert (inputs["codes"]["keys"], inputs["codes"]["values"]) == ("integer", {"type": "string"})

    client = client_for("editor")
    reads = _upload(client, workspace, "reads.txt", b"ACGT\n")
    tag = _upload(client, workspace, "tag.txt", b"tagged file\n")
    a = _upload(client, workspace, "a.txt", b"file a\n")
    b = _upload(client, workspace, "b.txt", b"file b\n")
    body: dict[str, Any] = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {
            "sample": {"name": "s1", "reads": reads, "colour": "red"},
            "tagged": {"left": "t1"},
            "by_name": {"a": a, "b": "not-a-file-id"},
            "grid": [[1, 2], ["x"]],
            "maybe_names": ["x", None],
            "codes": {"1": "one", "two": "2"},
        },
    }
    refused = client.post("/api/jobs/", body, format="json")
    assert refused.status_code == 400, refused.json()
    details = refused.json()["details"]
    assert set(details) >= {
        "inputs.sample.colour",
        "inputs.tagged.right",
        "inputs.by_name.b",
        "inputs.grid[1][0]",
        "inputs.codes.two",
    }, details

    body["inputs"].update(
        sample={"name": "s1", "reads": reads},
        tagged={"left": "t1", "right": tag},
        by_name={"a": a, "b": b},
        grid=[[1, 2], [3]],
        codes={"1": "one", "2": "two"},
    )
    job = run_job(client, body, django_capture_on_commit_callbacks)
    done = wait_terminal(job["id"], timeout=150)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    engine = done.run_spec["inputs"]
    assert engine["structured.sample"]["name"] == "s1"
    # Files inside structures reach the engine as files it reads (here: local paths).
    assert Path(engine["structured.sample"]["reads"]).read_bytes() == b"ACGT\n"
    assert Path(engine["structured.tagged"]["right"]).read_bytes() == b"tagged file\n"
    assert sorted(engine["structured.by_name"]) == ["a", "b"]
    assert engine["structured.maybe_names"] == ["x", None]

    outputs = done.outputs
    assert outputs["grid_out"] == [[1, 2], [3]]
    assert outputs["codes_out"] == {"1": "one", "2": "two"}
    assert outputs.get("depth") is None  # an optional output without a value
    assert outputs["counted"]["left"] == 3
    summary = _text(client, outputs["counted"]["right"])
    assert summary == (
        b"sample s1 depth none\nACGT\ntag t1\ntagged file\nnames x\nrows 2 first 2\n"
    )
    assert sorted(outputs["copies"]) == ["a", "b"]
    assert _text(client, outputs["copies"]["b"]) == b"file b\n"
    echoed = outputs["echoed"]
    assert echoed["name"] == "s1"
    # A file of the job's inputs given back inside an output is that input's File again.
    produced = {
        str(pk) for pk in File.objects.filter(produced_by=done).values_list("pk", flat=True)
    }
    assert outputs["copies"]["a"] in produced
    assert outputs["counted"]["right"] in produced
    assert _text(client, echoed["reads"]) == b"ACGT\n"
