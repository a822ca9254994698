"""WebMEV's run contract for local Docker, end to end: a WebMEV operation folder is added through
the API, built on the real engine, and a job runs it on a real TSV.

WebMEV copies a job's inputs into a writable execution dir, mounts it at the same path in the
container, runs ``docker run <image> <words>`` (no shell, the image's ENTRYPOINT kept) and reads
``outputs.json`` from that dir; its scripts write their results next to their input. The
operations are stand-ins for WebMEV's ``pca`` and ``mev-matrix-subset`` (tests/e2e/webmev_ops/).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from rest_framework.test import APIClient

from api.models import File, FileStatus, Workspace
from operations import runner
from operations.models import Job, Operation
from operations.states import TERMINAL, JobStatus
from tests.harness.docker import ensure_docker
from tests.harness.python_image import PYTHON_IMAGE, ensure_python_image

pytestmark = pytest.mark.django_db

OPS = Path(__file__).parent / "webmev_ops"
OPERATIONS_URL = "/api/operations/"
BUILT: set[str] = set()  # images the tests built, removed at the end

# 4 genes x 6 samples: samples s1-s3 and s4-s6 differ strongly on G1/G2, a little on G3.
MATRIX = (
    "gene\ts1\ts2\ts3\ts4\ts5\ts6\n"
    "G1\t10\t11\t9\t30\t31\t29\n"
    "G2\t5\t6\t5\t20\t19\t21\n"
    "G3\t7\t8\t6\t7\t9\t8\n"
    "G4\t1\t1\t2\t1\t2\t1\n"
)


@pytest.fixture(scope="module", autouse=True)
def engine() -> Iterator[None]:
    ensure_docker()
    ensure_python_image()
    yield
    client = docker.from_env()
    try:
        for tag in BUILT:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, force=True)
    finally:
        client.close()


def variant(
    tmp_path: Path,
    op: str,
    *,
    entrypoint: str,
    drop: tuple[str, ...] = (),
    converters: dict[str, str] | None = None,
) -> Path:
    """A copy of a fixture operation with inputs left out, converters or the entrypoint changed
    (what this branch converts today: see the xfail test for the real-shaped folders)."""
    folder = tmp_path / op
    shutil.copytree(OPS / op, folder)
    spec = json.loads((folder / "operation_spec.json").read_text())
    for key in drop:
        del spec["inputs"][key]
    for key, converter in (converters or {}).items():
        spec["inputs"][key]["converter"] = converter
    (folder / "operation_spec.json").write_text(json.dumps(spec, indent=4))
    (folder / "entrypoint.txt").write_text(entrypoint + "\n")
    return folder


def add_operation(client_for: Callable[[str], APIClient], folder: Path) -> Operation:
    """Add a WebMEV folder as a user does: POST /api/operations/ {"source": <folder>}."""
    answer = client_for("staff").post(OPERATIONS_URL, {"source": str(folder)}, format="json")
    assert answer.status_code in (200, 201), answer.json()
    operation = Operation.objects.get(pk=answer.json()["id"])
    BUILT.add(operation.image)
    return operation


def upload(client: APIClient, workspace: Workspace, data: str, name: str) -> str:
    buf = io.BytesIO(data.encode())
    buf.name = name
    body = {"workspace": str(workspace.pk), "file": buf, "file_type": "table"}
    answer = client.post("/api/files/", body, format="multipart")
    assert answer.status_code == 201, answer.json()
    return str(answer.json()["id"])


def run_job(
    client: APIClient,
    workspace: Workspace,
    operation: Operation,
    inputs: dict[str, Any],
    capture: Any,
    timeout: float = 90,
) -> Job:
    with capture(execute=True):
        answer = client.post(
            "/api/jobs/",
            {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": inputs},
            format="json",
        )
    assert answer.status_code == 201, answer.json()
    job_id = answer.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll_cycle()
        job = Job.objects.get(pk=job_id)
        if JobStatus(job.status) in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {Job.objects.get(pk=job_id).status}")


def content(client: APIClient, file_id: str) -> str:
    answer = client.get(f"/api/files/{file_id}/download/")
    assert answer.status_code == 200
    return b"".join(answer.streaming_content).decode()  # type: ignore[attr-defined]


def test_pca_writes_its_results_next_to_its_input_and_they_become_files_and_values(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """run_pca.py writes pca_output.tsv and outputs.json into dirname(<its input>): with Ferry's
    own contract (inputs read-only under /inputs) this job failed."""
    folder = variant(
        tmp_path,
        "pca",
        entrypoint="python3 /usr/local/bin/run_pca.py -i {{input_matrix}}",
        drop=("samples",),
    )
    operation = add_operation(client_for, folder)
    assert operation.name == "principal-component-analysis-pca"
    client = client_for("editor")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")

    job = run_job(
        client, workspace, operation, {"input_matrix": matrix}, django_capture_on_commit_callbacks
    )

    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    # WebMEV's placement: the input was copied into the execution dir, the argv run as words.
    exec_dir = job.run_spec["exec_dir"]
    assert job.run_spec["argv"][:3] == ["python3", "/usr/local/bin/run_pca.py", "-i"]
    assert Path(job.run_spec["argv"][3]).parent == Path(exec_dir)
    assert not Path(exec_dir).exists()  # removed once the results were stored
    coordinates = File.objects.get(pk=job.outputs["pca_coordinates"])
    assert coordinates.status == FileStatus.READY
    assert coordinates.produced_by_id == job.pk
    assert (coordinates.file_type, coordinates.resource_type) == ("table", "MTX")
    assert coordinates.name == "pca_output.tsv"
    rows = [line.split("\t") for line in content(client, str(coordinates.pk)).splitlines()]
    assert rows[0] == ["sample", "pc1", "pc2"]
    assert [r[0] for r in rows[1:]] == [f"s{i}" for i in range(1, 7)]
    pc1 = [float(r[1]) for r in rows[1:]]
    assert (pc1[0] > 0) == (pc1[1] > 0) == (pc1[2] > 0) != (pc1[3] > 0)  # the two groups split
    first, second = job.outputs["pc1_explained_variance"], job.outputs["pc2_explained_variance"]
    assert isinstance(first, float)
    assert isinstance(second, float)
    assert 0.9 < first <= 1.0
    assert 0.0 <= second < first
    assert first + second <= 1.0 + 1e-9
    detail = client.get(f"/api/files/{coordinates.pk}/").json()
    assert detail["resource_type"] == "MTX"
    assert detail["file_type"] == "table"


def test_matrix_subset_variable_output_keeps_the_resource_type_it_reports(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A VariableDataResource output is {"path", "resource_type"} in outputs.json; the File
    records that type. (Until the with-type converter is converted, the entrypoint appends the
    type to the path itself: the script gets the same ``path:::TYPE`` word.)"""
    folder = variant(
        tmp_path,
        "mev-matrix-subset",
        entrypoint="python3 /usr/local/bin/subset_matrix.py -i {{input_matrix}}:::EXP_MTX",
        drop=("samples", "features", "keepsamples", "keepfeatures"),
        converters={
            "input_matrix": "api.converters.data_resource."
            "LocalDockerSingleVariableDataResourceConverter"
        },
    )
    operation = add_operation(client_for, folder)
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "expression.tsv")

    job = run_job(
        client, workspace, operation, {"input_matrix": matrix}, django_capture_on_commit_callbacks
    )

    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    reduced = File.objects.get(pk=job.outputs["reduced_matrix"])
    assert (reduced.file_type, reduced.resource_type) == ("table", "EXP_MTX")
    assert reduced.name.endswith(".subset.tsv")
    assert content(client, str(reduced.pk)) == MATRIX


# --- outputs.json as WebMEV's output converters read it -------------------------------------------

WRITER = '''\
"""Write the files, symlinks and outputs.json a test asks for, next to the input."""
import json, os, sys

where = os.path.dirname(sys.argv[2])
# Run after the image's ENTRYPOINT (like micromamba's, which activates the environment), with
# $WORKDIR naming the execution dir that holds the input.
if os.environ.get("MEV_ENV") != "active" or os.environ.get("WORKDIR") != where:
    sys.exit(f"entrypoint skipped or WORKDIR wrong: {os.environ}")
plan = json.loads(sys.argv[4].replace("@DIR@", where))
for name, text in plan.get("files", {}).items():
    with open(os.path.join(where, name), "w") as fh:
        fh.write(text)
for name, target in plan.get("links", {}).items():
    os.symlink(target, os.path.join(where, name))
with open(os.path.join(where, "outputs.json"), "w") as fh:
    json.dump(plan["outputs"], fh)
'''


def writer_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mev-output-writer"
    (folder / "docker").mkdir(parents=True)
    data_resource = "api.converters.data_resource.LocalDockerSingleDataResourceConverter"
    variable = "api.converters.data_resource.LocalDockerSingleVariableDataResourceConverter"
    spec = {
        "name": "Output writer",
        "description": "Writes the outputs.json it is given.",
        "inputs": {
            "input_matrix": {
                "description": "Any matrix.",
                "name": "Matrix:",
                "required": True,
                "converter": data_resource,
                "spec": {"attribute_type": "DataResource", "resource_type": "MTX", "many": False},
            },
            "plan": {
                "description": "What to write.",
                "name": "Plan:",
                "required": True,
                "converter": "api.converters.basic_attributes.UnrestrictedStringConverter",
                "spec": {"attribute_type": "UnrestrictedString"},
            },
        },
        "outputs": {
            "table": {
                "required": True,
                "converter": variable,
                "spec": {
                    "attribute_type": "VariableDataResource",
                    "resource_types": ["MTX", "I_MTX"],
                    "many": False,
                },
            },
            "annotations": {
                "required": False,
                "converter": data_resource,
                "spec": {"attribute_type": "DataResource", "resource_type": "ANN", "many": False},
            },
            "tables": {
                "required": False,
                "converter": "api.converters.data_resource."
                "LocalDockerMultipleVariableDataResourceConverter",
                "spec": {
                    "attribute_type": "VariableDataResource",
                    "resource_types": ["MTX", "JSON"],
                    "many": True,
                },
            },
        },
        "mode": "local_docker",
        "workspace_operation": True,
    }
    (folder / "operation_spec.json").write_text(json.dumps(spec, indent=4))
    (folder / "entrypoint.txt").write_text(
        "python3 /usr/local/bin/write_outputs.py -i {{input_matrix}} -p {{plan}}\n"
    )
    (folder / "docker" / "write_outputs.py").write_text(WRITER)
    (folder / "docker" / "activate.sh").write_text('#!/bin/sh\nexport MEV_ENV=active\nexec "$@"\n')
    (folder / "docker" / "Dockerfile").write_text(
        f"FROM {PYTHON_IMAGE}\n"
        "COPY write_outputs.py /usr/local/bin/write_outputs.py\n"
        "COPY activate.sh /usr/local/bin/activate.sh\n"
        "RUN chmod 0755 /usr/local/bin/activate.sh\n"
        'ENTRYPOINT ["/usr/local/bin/activate.sh"]\n'
    )
    return folder


TABLE = {"t.tsv": "a\tb\n1\t2\n"}


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        pytest.param(
            {"files": TABLE, "outputs": {"table": {"path": "@DIR@/t.tsv", "resource_type": "FT"}}},
            "output 'table' says resource_type \"FT\", which is not one of its declared types "
            "(MTX, I_MTX)",
            id="undeclared-resource-type",
        ),
        pytest.param(
            {"files": TABLE, "outputs": {"table": "@DIR@/t.tsv"}},
            'output \'table\' must be {"path": …, "resource_type": …}',
            id="variable-resource-without-its-type",
        ),
        pytest.param(
            {"outputs": {"table": {"path": "/etc/passwd", "resource_type": "MTX"}}},
            "output 'table' names /etc/passwd, which is outside ",
            id="path-outside-the-execution-dir",
        ),
        pytest.param(
            {
                "links": {"t.tsv": "/etc/passwd"},
                "outputs": {"table": {"path": "@DIR@/t.tsv", "resource_type": "MTX"}},
            },
            "output 'table' names ",
            id="symlink-escaping-the-execution-dir",
        ),
        pytest.param(
            {"files": TABLE, "outputs": {"annotations": None}},
            "The operation's output 'table' is missing from outputs.json.",
            id="missing-required-key",
        ),
        pytest.param(
            {
                "files": TABLE,
                "outputs": {
                    "table": {"path": "@DIR@/t.tsv", "resource_type": "MTX"},
                    "tables": {"path": "@DIR@/t.tsv", "resource_type": "MTX"},
                },
            },
            "output 'tables' holds many files: outputs.json must give a list",
            id="many-without-a-list",
        ),
    ],
)
def test_bad_outputs_fail_the_job_naming_the_output(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    plan: dict[str, Any],
    problem: str,
) -> None:
    operation = add_operation(client_for, writer_folder(tmp_path))
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "m.tsv")
    job = run_job(
        client,
        workspace,
        operation,
        {"input_matrix": matrix, "plan": json.dumps(plan)},
        django_capture_on_commit_callbacks,
    )
    assert job.status == JobStatus.FAILED
    assert problem in job.error_message, job.error_message
    if "outside" in problem or "symlink" in str(plan):
        assert f"which is outside {job.run_spec['exec_dir']}" in job.error_message
    assert not File.objects.filter(produced_by=job).exists()


def test_null_optional_outputs_and_many_outputs(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """``null`` is no file (fine for an optional output); ``many`` is a list, each item with its
    own resource type. The run kept the image's ENTRYPOINT and got $WORKDIR (the script checks
    both), and its argument (JSON with quotes, braces and spaces) arrived as one word."""
    operation = add_operation(client_for, writer_folder(tmp_path))
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "m.tsv")
    plan = {
        "files": {**TABLE, "meta.json": '{"a": 1}'},
        "outputs": {
            "table": {"path": "@DIR@/t.tsv", "resource_type": "I_MTX"},
            "annotations": None,
            "tables": [
                {"path": "@DIR@/t.tsv", "resource_type": "MTX"},
                {"path": "@DIR@/meta.json", "resource_type": "JSON"},
            ],
        },
    }
    job = run_job(
        client,
        workspace,
        operation,
        {"input_matrix": matrix, "plan": json.dumps(plan)},
        django_capture_on_commit_callbacks,
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert "annotations" not in job.outputs
    table = File.objects.get(pk=job.outputs["table"])
    assert (table.file_type, table.resource_type) == ("table", "I_MTX")
    tables = [File.objects.get(pk=pk) for pk in job.outputs["tables"]]
    assert [(f.file_type, f.resource_type) for f in tables] == [("table", "MTX"), ("json", "JSON")]


# --- the real-shaped folders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "outputs"),
    [
        ("pca", ["pca_coordinates", "pc1_explained_variance"]),
        ("mev-matrix-subset", ["reduced_matrix"]),
    ],
)
def test_real_shaped_webmev_folders_run_unchanged(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    op: str,
    outputs: list[str],
) -> None:
    folder = tmp_path / op
    shutil.copytree(OPS / op, folder)
    operation = add_operation(client_for, folder)
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")
    # The with-type converter hands the script the file's own resource type.
    typed = client.patch(f"/api/files/{matrix}/", {"resource_type": "EXP_MTX"}, format="json")
    assert typed.status_code == 200, typed.json()
    job = run_job(
        client, workspace, operation, {"input_matrix": matrix}, django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert set(outputs) <= set(job.outputs)


def test_matrix_subset_runs_with_sample_and_gene_sets_and_flags(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The real-shaped mev-matrix-subset folder, unchanged: a workspace's sample set by id, an
    inline gene set, booleans as 1/0 deciding `{% if %}` blocks, the with-type input."""
    folder = tmp_path / "mev-matrix-subset"
    shutil.copytree(OPS / "mev-matrix-subset", folder)
    operation = add_operation(client_for, folder)
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "RNASEQ_COUNT_MTX"}, format="json")
    ).status_code == 200
    samples = client.post(
        "/api/sets/",
        {
            "workspace": str(workspace.pk),
            "kind": "observation",
            "name": "controls",
            "elements": [{"id": "s1"}, {"id": "s2"}, {"id": "s4", "attributes": {}}],
        },
        format="json",
    )
    assert samples.status_code == 201, samples.json()
    inputs = {
        "input_matrix": matrix,
        "samples": {"set": samples.json()["id"]},
        "features": {"elements": [{"id": "G1"}, {"id": "G3"}]},
        "keepsamples": True,
        "keepfeatures": False,
    }
    job = run_job(client, workspace, operation, inputs, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    reduced = File.objects.get(pk=job.outputs["reduced_matrix"])
    assert reduced.resource_type == "RNASEQ_COUNT_MTX"
    assert content(client, str(reduced.pk)) == ("gene\ts1\ts2\ts4\nG2\t5\t6\t20\nG4\t1\t1\t1\n")


def test_a_file_of_another_resource_type_is_refused_naming_the_input(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "pca"
    shutil.copytree(OPS / "pca", folder)
    operation = add_operation(client_for, folder)
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "ANN"}, format="json")
    ).status_code == 200
    answer = client.post(
        "/api/jobs/",
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"input_matrix": matrix},
        },
        format="json",
    )
    assert answer.status_code == 400, answer.json()
    assert "ANN" in answer.json()["details"]["inputs.input_matrix"][0]
    bad = client.patch(f"/api/files/{matrix}/", {"resource_type": "NOPE"}, format="json")
    assert bad.status_code == 400
    assert "resource_type" in bad.json()["details"]
