"""Outputs keep their structure: ``Array[Array[File]]`` (with an empty row and repeated file
names), ``Map[String, File]``, pairs and structs.

Unit tests of the walking in ``wdl/outputs.py`` and of the signature, then the
``structured_outputs`` operation (``tests/wdl_operations``) run through the API on miniwdl and
on the Cromwell test server: the job's outputs mirror the WDL values with File ids where the
files were, every File has a distinct name and bucket key and the right bytes, and a repeated
finalize stores nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import WDL
from rest_framework.test import APIClient

import wdl
from api.models import File, Workspace
from executors.base import RunState
from executors.registry import get_executor
from operations import runner
from operations.models import Job
from operations.spec import SpecError, check_spec
from operations.states import JobStatus
from operations.transitions import transition
from tests.e2e.test_jobs import run_job
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401 - fixtures
    EXECUTOR,
    cromwell,
    server_record,
    site_bucket,
    var_dir,
)
from tests.e2e.test_worker_restart import wait_for
from tests.harness.docker import ensure_busybox_image, ensure_docker, ensure_swarm
from tests.operations_fixtures import TEST_IMAGE, make_wdl_operation
from wdl.outputs import (
    OutputShapeError,
    ResultFile,
    describe_shape,
    distinct_file_names,
    file_leaves,
    holds_files,
    path_segment,
    rebuild,
)
from wdl.signature import output_type

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server

OPERATION = Path(__file__).parents[1] / "wdl_operations" / "structured_outputs"

FILE = {"type": "file", "file_type": "text"}
GRID = {"type": "list", "items": {"type": "list", "items": FILE}}
BY_SAMPLE = {"type": "map", "values": FILE}


# ------------------------------------------------------------------------------ walking values


def test_an_array_of_arrays_keeps_its_rows_and_positions() -> None:
    value = [["a/1.txt", "a/2.txt"], ["b/1.txt"], []]
    assert file_leaves(GRID, value) == [
        ((0, 0), "a/1.txt"),
        ((0, 1), "a/2.txt"),
        ((1, 0), "b/1.txt"),
    ]
    rebuilt = rebuild(GRID, value, lambda position, ref: "-".join(map(str, position)))
    assert rebuilt == [["0-0", "0-1"], ["1-0"], []]


def test_maps_pairs_and_structs_keep_keys_and_members() -> None:
    shape = {
        "type": "struct",
        "members": {
            "reports": BY_SAMPLE,
            "best": {"type": "pair", "left": {"type": "string"}, "right": FILE},
            "count": {"type": "integer"},
        },
    }
    value = {
        "reports": {"s1": "/r/1/report.txt", "lib 2/b": "/r/2/report.txt"},
        "best": {"left": "s1", "right": "/r/1/report.txt"},
        "count": 2,
    }
    assert file_leaves(shape, value) == [
        (("reports", "s1"), "/r/1/report.txt"),
        (("reports", "lib 2/b"), "/r/2/report.txt"),
        (("best", "right"), "/r/1/report.txt"),
    ]
    rebuilt = rebuild(shape, value, lambda position, ref: f"id{len(position)}")
    assert rebuilt == {
        "reports": {"s1": "id2", "lib 2/b": "id2"},
        "best": {"left": "s1", "right": "id2"},
        "count": 2,
    }


def test_optional_values_are_kept_as_null() -> None:
    shape = {"type": "list", "items": FILE}
    assert rebuild(shape, ["a", None], lambda p, ref: ref.upper()) == ["A", None]
    assert rebuild(shape, None, lambda p, ref: ref) is None


@pytest.mark.parametrize(
    ("shape", "value", "message"),
    [
        (GRID, [["a"], "b"], "output 'x'[1] must be a list, not string"),
        (GRID, [[3]], "output 'x'[0][0] should name a file, not 3"),
        (BY_SAMPLE, ["a"], "output 'x' must be an object (a map), not list"),
        ({"type": "integer"}, True, "output 'x' must be integer, not boolean"),
        (
            {"type": "map", "values": {"type": "list", "items": {"type": "float"}}},
            {"k": [1, "2"]},
            "output 'x'[\"k\"][1] must be float, not string",
        ),
    ],
)
def test_values_that_do_not_fit_are_reported_where(
    shape: dict[str, Any], value: Any, message: str
) -> None:
    with pytest.raises(OutputShapeError) as caught:
        rebuild(shape, value, lambda p, ref: ref)
    assert caught.value.describe("x") == message


def test_path_segments_are_safe_and_distinct() -> None:
    assert path_segment(3) == "3"
    assert path_segment("s1") == "s1"
    assert path_segment("sample-2.b") == "sample-2.b"
    odd = ["lib 2/b", "lib_2_b", "lib 2_b", "..", ".hidden", "é", "", "x" * 100, "a~b"]
    segments = [path_segment(key) for key in odd]
    assert segments[1] == "lib_2_b"  # a plain key stays as it is
    assert len(set(segments)) == len(odd)
    for segment in segments:
        assert "/" not in segment
        assert segment not in ("", ".", "..")
        assert not segment.startswith(".")
        assert len(segment) <= 64
        assert segment.isascii()
    assert path_segment("lib 2/b") == path_segment("lib 2/b")  # deterministic


def test_file_names_stay_basenames_where_unique() -> None:
    files = [
        ResultFile("grid", (0, 0), "1.txt"),
        ResultFile("grid", (0, 1), "2.txt"),
        ResultFile("grid", (1, 0), "1.txt"),
        ResultFile("by_sample", ("s1",), "report.txt"),
        ResultFile("by_sample", ("lib 2/b",), "report.txt"),
        ResultFile("summary", (), "summary.json"),
    ]
    names = distinct_file_names(files)
    assert names[:4] == ["grid-0-0_1.txt", "2.txt", "grid-1-0_1.txt", "by_sample-s1_report.txt"]
    assert names[4].startswith("by_sample-lib_2_b~")
    assert names[4].endswith("_report.txt")
    assert names[5] == "summary.json"
    assert distinct_file_names(files) == names


def test_file_names_differ_even_when_labels_collide() -> None:
    files = [
        ResultFile("m", ("a-b", "c"), "f.txt", tiebreak="1111"),
        ResultFile("m", ("a", "b-c"), "f.txt", tiebreak="2222"),
        ResultFile("m", ("x",), "m-a-b-c_f.txt", tiebreak="3333"),
    ]
    names = distinct_file_names(files)
    assert len(set(names)) == 3


# ---------------------------------------------------------------------------------- signature


def test_signature_keeps_structures_and_metadata_types_every_file() -> None:
    loaded = wdl.load_workflow(wdl.bundle_from_folder(OPERATION))
    merged = wdl.workflow_signature(
        loaded, {"outputs": {"grid": {"file_type": "text"}, "by_sample": {"file_type": "json"}}}
    )
    outputs = merged["outputs"]
    assert {k: v for k, v in outputs["grid"].items() if k not in ("description", "required")} == (
        GRID
    )
    assert outputs["by_sample"]["values"] == {"type": "file", "file_type": "json"}
    assert outputs["sizes"]["values"] == {"type": "string"}
    assert outputs["file_count"]["type"] == "integer"
    assert holds_files(outputs["grid"])
    assert not holds_files(outputs["sizes"])
    # ... and the spec checker accepts what the signature makes
    spec = {"name": "s", "version": "1", "mode": "wdl", "outputs": outputs}
    assert check_spec(spec)["outputs"] == outputs


def test_shapes_are_described_in_words() -> None:
    assert describe_shape(GRID) == "list of list of file"
    assert describe_shape(BY_SAMPLE) == "map of string to file"
    pair = {"type": "pair", "left": {"type": "string"}, "right": FILE}
    assert describe_shape(pair) == "pair of string and file"
    struct = {"type": "struct", "members": {"n": {"type": "integer"}, "p": pair}}
    assert describe_shape(struct) == "struct of n: integer, p: pair of string and file"


def test_pairs_and_structs_map_to_output_types() -> None:
    pair = WDL.Type.Pair(WDL.Type.String(), WDL.Type.Array(WDL.Type.File()))
    assert output_type(pair) == {
        "type": "pair",
        "left": {"type": "string"},
        "right": {"type": "list", "items": {"type": "file", "file_type": "binary"}},
    }
    # Maps keyed by Int were refused once; the engines' JSON gives their keys as strings.
    assert output_type(WDL.Type.Map((WDL.Type.Int(), WDL.Type.File()))) == {
        "type": "map",
        "values": {"type": "file", "file_type": "binary"},
    }
    assert output_type(WDL.Type.Map((WDL.Type.File(), WDL.Type.Int()))) is None


def test_structured_outputs_are_for_wdl_operations_only() -> None:
    spec = {
        "name": "d",
        "version": "1",
        "command": "true",
        "outputs": {"m": {"type": "map", "values": FILE}},
    }
    with pytest.raises(SpecError) as caught:
        check_spec(spec)
    assert caught.value.errors == [
        {
            "path": "$.outputs.m.type",
            "message": "map outputs are for WDL operations; use one of "
            "['file', 'integer', 'float', 'string', 'boolean', 'list']",
        }
    ]
    spec["mode"] = "wdl"
    spec.pop("command")
    spec["outputs"] = {"m": {"type": "map", "values": {"type": "file", "file_type": "csv"}}}
    with pytest.raises(SpecError) as caught:
        check_spec(spec)
    assert caught.value.errors[0]["path"] == "$.outputs.m.values.file_type"


@pytest.mark.django_db
def test_an_operation_with_structured_outputs_is_added() -> None:
    operation = make_wdl_operation(OPERATION)
    outputs = operation.spec["outputs"]
    assert outputs["grid"]["items"]["items"] == {"type": "file", "file_type": "text"}
    assert outputs["by_sample"]["values"] == {"type": "file", "file_type": "text"}
    assert "grid (list of list of file)" in operation.build_log
    assert "by_sample (map of string to file)" in operation.build_log


# ------------------------------------------------------------------------------ end to end

ENGINES = ["local-miniwdl", EXECUTOR]
REPORTS = {"s1": b"report for s1\n", "lib 2/b": b"report for lib 2/b\n"}
GRID_BYTES = [[b"row 0 item 1\n", b"row 0 item 2\n"], [b"row 1 item 1\n"], []]


@pytest.fixture
def wdl_engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    ensure_swarm()


def _finalizing_job(client: APIClient, workspace: Workspace, engine: str, capture: Any) -> Job:
    """The structured_outputs job, its run ended, moved to FINALIZING as a poll cycle does but
    not finalized yet (the test finalizes it)."""
    operation = make_wdl_operation(OPERATION)
    created = run_job(
        client,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {},
            "executor": engine,
        },
        capture,
    )
    job = Job.objects.select_related("operation", "workspace", "owner").get(pk=created["id"])
    executor = get_executor(engine)
    wait_for(lambda: executor.poll([job])[job.id].state is RunState.EXITED, 180, "the run to end")
    job.refresh_from_db()
    if job.status == JobStatus.SUBMITTED:  # else the poll kicked at submit saw it running
        assert transition(job, JobStatus.RUNNING, expected=JobStatus.SUBMITTED)
    assert transition(job, JobStatus.FINALIZING, expected=JobStatus.RUNNING)
    return job


def _body(client: APIClient, file_id: str) -> bytes:
    response = client.get(f"/api/files/{file_id}/download/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("engine", ENGINES)
def test_nested_arrays_and_maps_of_files_keep_their_structure(
    engine: str,
    request: pytest.FixtureRequest,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
    wdl_engine: None,
) -> None:
    if engine == EXECUTOR:
        request.getfixturevalue("server_record")
    bucket = request.getfixturevalue("site_bucket")  # the workspace's files go to a bucket
    client = client_for("owner")
    job = _finalizing_job(client, workspace, engine, django_capture_on_commit_callbacks)

    # A worker stored the results and died before recording the job's outcome...
    collected = get_executor(engine).collect(job)
    assert collected.succeeded, collected.error_message
    location = get_executor(engine).options.get("outputs_location")
    first = runner.register_outputs(job, collected, location)
    stored_first = sorted(File.objects.filter(produced_by=job).values_list("pk", "storage_uri"))
    # ... so the reconciler finalizes it again.
    runner.finalize_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.outputs == first
    runner.finalize_job(str(job.pk))  # a late repeat changes nothing
    assert sorted(File.objects.filter(produced_by=job).values_list("pk", "storage_uri")) == (
        stored_first
    )

    outputs = job.outputs
    assert set(outputs) == {"grid", "by_sample", "sizes", "file_count", "summary"}
    grid = outputs["grid"]
    assert [len(row) for row in grid] == [2, 1, 0]  # the empty row is kept
    assert set(outputs["by_sample"]) == set(REPORTS)  # the original keys
    assert outputs["sizes"] == {key: str(len(body)) for key, body in REPORTS.items()}
    assert outputs["file_count"] == 3
    assert outputs["summary"]["left"] == 2

    ids = [
        *(i for row in grid for i in row),
        *outputs["by_sample"].values(),
        outputs["summary"]["right"],
    ]
    produced = File.objects.filter(produced_by=job)
    assert sorted(map(str, produced.values_list("pk", flat=True))) == sorted(ids)
    assert len(set(ids)) == 6
    files = {str(f.pk): f for f in produced}
    names = [files[i].name for i in ids]
    assert len(set(names)) == 6
    assert names[:3] == ["grid-0-0_1.txt", "2.txt", "grid-1-0_1.txt"]
    assert names[3] == "by_sample-s1_report.txt"
    assert names[4].startswith("by_sample-lib_2_b~")
    assert names[4].endswith("_report.txt")
    assert names[5] == "summary.txt"  # a unique basename stays as it is
    assert {files[i].file_type for i in ids[:5]} == {"text"}  # from operation.yaml

    expected = {
        i: b
        for row, bodies in zip(grid, GRID_BYTES, strict=True)
        for i, b in zip(row, bodies, strict=True)
    }
    expected.update({outputs["by_sample"][k]: body for k, body in REPORTS.items()})
    expected[outputs["summary"]["right"]] = b"2 samples\n"
    for file_id, body in expected.items():
        assert _body(client, file_id) == body
        record = files[file_id]
        assert record.size == len(body)
        if record.sha256:
            assert record.sha256 == hashlib.sha256(body).hexdigest()
        if record.md5:
            assert record.md5 == hashlib.md5(body, usedforsecurity=False).hexdigest()
        assert record.sha256 or record.md5

    # Bucket keys: one folder per step into the output, distinct, nothing else stored.
    folder = f"s3://{bucket}/ferry/workspaces/{workspace.pk}/jobs/{job.pk}"
    uris = sorted(f.storage_uri for f in produced)
    assert uris == sorted(
        [
            f"{folder}/grid/0/0/1.txt",
            f"{folder}/grid/0/1/2.txt",
            f"{folder}/grid/1/0/1.txt",
            f"{folder}/by_sample/s1/report.txt",
            files[outputs["by_sample"]["lib 2/b"]].storage_uri,
            f"{folder}/summary/right/summary.txt",
        ]
    )
    odd = files[outputs["by_sample"]["lib 2/b"]].storage_uri
    assert odd.startswith(f"{folder}/by_sample/lib_2_b~")
    assert odd.endswith("/report.txt")
    client_s3 = moto_server.boto3_client()
    try:
        listed = client_s3.list_objects_v2(Bucket=bucket, Prefix=folder.split("/", 3)[3] + "/")
    finally:
        client_s3.close()
    assert sorted(f"s3://{bucket}/{o['Key']}" for o in listed.get("Contents", [])) == uris

    # The API shows the same structure.
    shown = client.get(f"/api/jobs/{job.pk}/").json()
    assert shown["outputs"] == outputs
    assert sorted(f["id"] for f in shown["output_files"]) == sorted(ids)
