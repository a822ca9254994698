"""WebMEV Cromwell-mode operations end to end: a folder (``operation_spec.json`` with
``"mode": "cromwell"``, a draft-2 ``main.wdl``, imported ``.wdl`` files, ``docker/`` with a
Dockerfile per task image) is added through the API, its images built on the real engine and
tagged as the WDL names them, and jobs run on miniwdl with WebMEV's inputs mapping.

The operations are stand-ins (tests/e2e/webmev_ops/): ``mev-hcl`` (WebMEV's hierarchical
clustering: OptionString choices with defaults, a VariableDataResource input, one
``docker/Dockerfile``, a runtime asking for 4 CPUs and 30 G) and ``table-demo`` (three tasks, three
images from ``docker/Dockerfile.<name>``, an imported second file).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.ingestion import operation_bundle_dir
from operations.models import Event, Operation
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401  (fixtures: a Cromwell test server)
    EXECUTOR,
    cromwell,
    server_record,
    site_bucket,
)
from tests.e2e.test_webmev_local_docker import content, upload
from tests.harness.docker import ensure_busybox_image, ensure_docker, ensure_swarm
from tests.harness.python_image import ensure_python_image

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

OPS = Path(__file__).parent / "webmev_ops"
OPERATIONS_URL = "/api/operations/"
BUILT: set[str] = set()  # images the tests built, removed at the end
MATRIX = "gene\ts1\ts2\ts3\ts4\nG1\t10\t11\t30\t31\nG2\t5\t6\t20\t19\nG3\t7\t8\t7\t9\n"


@pytest.fixture(scope="module", autouse=True)
def engine() -> Iterator[None]:
    ensure_docker()
    ensure_busybox_image()
    ensure_python_image()
    ensure_swarm()
    yield
    client = docker.from_env()
    try:
        for tag in BUILT:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, force=True)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    """Added workflows are kept under FERRY_VAR_DIR: one per test."""
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return settings.FERRY_VAR_DIR


def copy_op(tmp_path: Path, op: str, *, git: bool = False) -> Path:
    folder = tmp_path / "src" / op
    shutil.copytree(OPS / op, folder)
    if git:
        for args in (
            ["init", "-q"],
            ["add", "-A"],
            ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "op"],
        ):
            subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
    return folder


def add(client_for: Callable[[str], APIClient], folder: Path) -> Any:
    return client_for("staff").post(OPERATIONS_URL, {"source": str(folder)}, format="json")


def add_operation(client_for: Callable[[str], APIClient], folder: Path) -> Operation:
    answer = add(client_for, folder)
    assert answer.status_code in (200, 201), answer.json()
    operation = Operation.objects.get(pk=answer.json()["id"])
    BUILT.update((operation.spec.get("wdl") or {}).get("images", {}).values())
    return operation


def as_plain_wdl(tmp_path: Path, op: str) -> Path:
    """The same workflow without WebMEV's spec: what adding it as plain WDL exposes."""
    folder = tmp_path / "plain" / op
    folder.mkdir(parents=True)
    for wdl_file in (OPS / op).glob("*.wdl"):
        shutil.copy(wdl_file, folder / wdl_file.name)
    return folder


def exposed(client: APIClient, operation: Operation) -> dict[str, Any]:
    answer = client.get(f"{OPERATIONS_URL}{operation.pk}/")
    assert answer.status_code == 200, answer.json()
    inputs: dict[str, Any] = answer.json()["spec"]["inputs"]
    return inputs


def test_hcl_exposes_webmevs_choices_and_defaults_and_runs_on_miniwdl(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    folder = copy_op(tmp_path, "mev-hcl", git=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, check=True, capture_output=True, text=True
    ).stdout.strip()
    operation = add_operation(client_for, folder)
    staff = client_for("staff")

    # Exactly the spec's inputs, with WebMEV's choices and defaults; the plain WDL exposes the
    # same choices as required free strings.
    inputs = exposed(staff, operation)
    assert sorted(inputs) == ["clustering_dimension", "distance_metric", "input_matrix", "linkage"]
    assert inputs["linkage"]["type"] == "option"
    assert inputs["linkage"]["choices"] == ["ward", "complete", "average", "single"]
    assert (inputs["linkage"]["default"], inputs["linkage"]["required"]) == ("ward", False)
    assert inputs["linkage"]["wdl_input"] == "HierarchicalCluster.linkage"
    assert inputs["input_matrix"]["required"] is True
    plain = exposed(staff, add_operation(client_for, as_plain_wdl(tmp_path, "mev-hcl")))
    assert plain["linkage"]["type"] == "string"
    assert plain["linkage"]["required"] is True
    assert "choices" not in plain["linkage"]

    # The image is built from docker/Dockerfile, tagged as WebMEV tags the repo's own image, and
    # the kept workflow names that tag.
    tag = f"ghcr.io/web-mev/mev-hcl:sha-{commit}"
    assert operation.spec["wdl"]["images"] == {"ghcr.io/web-mev/mev-hcl": tag}
    labels = docker.from_env().images.get(tag).labels
    assert labels["org.ferry.operation"] == operation.name == "hierarchical-clustering-hcl"
    kept = (operation_bundle_dir(operation) / "main.wdl").read_text()
    assert f'docker: "{tag}"' in kept

    editor = client_for("editor")
    matrix = upload(editor, workspace, MATRIX, "counts.tsv")
    job = run_job(
        editor,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"input_matrix": matrix, "clustering_dimension": "both"},
        },
        django_capture_on_commit_callbacks,
    )
    assert job["executor"] == "local-miniwdl"
    done = wait_terminal(job["id"], timeout=150)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    # WebMEV's mapping: FQN keys, the defaults sent as values, internal inputs never sent.
    sent = done.run_spec["inputs"]
    assert set(sent) == {
        "HierarchicalCluster.input_matrix",
        "HierarchicalCluster.distance_metric",
        "HierarchicalCluster.clustering_dimension",
        "HierarchicalCluster.linkage",
    }
    assert sent["HierarchicalCluster.distance_metric"] == "euclidean"
    # 30 G and 4 CPUs on a smaller machine: scheduled with what the host has, and said so.
    host = docker.from_env().info()
    notices = [
        e.payload["message"] for e in Event.objects.filter(job_id=done.pk, kind="job.notice")
    ]
    if host["MemTotal"] < 30 * 10**9:  # miniwdl reads "30 G" as 30e9 bytes
        assert "runtime.memory adjusted to host limit" in done.stdout_tail
        assert notices, notices
        assert "30 G of memory" in notices[0], notices
    if host["NCPU"] < 4:
        assert "runtime.cpu adjusted to host limit" in done.stdout_tail
        assert notices, notices
        assert "4 CPUs" in notices[0], notices
    assert all(n.startswith("task clusterMatrix asks for") for n in notices)
    for output in ("observation_clusters", "feature_clusters"):
        result = File.objects.get(pk=done.outputs[output])
        assert (result.resource_type, result.file_type) == ("JSON", "json")
    tree = json.loads(content(editor, done.outputs["observation_clusters"]))
    assert "s1" in json.dumps(tree)
    assert tree["children"]

    # Added again at the same commit: the same operation, its lost workflow files restored as run.
    shutil.rmtree(operation_bundle_dir(operation))
    assert add_operation(client_for, folder).pk == operation.pk
    assert (operation_bundle_dir(operation) / "main.wdl").read_text() == kept


def test_several_images_one_per_task_with_an_imported_file(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = add_operation(client_for, copy_op(tmp_path, "table-demo"))
    staff = client_for("staff")
    inputs = exposed(staff, operation)
    assert sorted(inputs) == ["num_cols", "num_rows", "scale"]  # not the internal seed
    assert (inputs["num_cols"]["min"], inputs["num_cols"]["max"]) == (1, 20)
    assert inputs["scale"]["choices"] == ["raw", "log2"]
    plain = exposed(staff, add_operation(client_for, as_plain_wdl(tmp_path, "table-demo")))
    assert "seed" in plain
    assert plain["scale"]["type"] == "string"

    images = operation.spec["wdl"]["images"]
    rev = f"rev-{operation.revision[:40]}"
    assert images == {
        "ferrydemo/merge-tables:1.0": "ferrydemo/merge-tables:1.0",  # tagged: built as named
        "ferrydemo/make-table": f"ferrydemo/make-table:{rev}",
        "docker.io/ferrydemo/count-rows": f"docker.io/ferrydemo/count-rows:{rev}",
    }
    engine = docker.from_env()
    for tag in images.values():
        assert engine.images.get(tag).labels["org.ferry.revision"] == operation.revision
    imported = (operation_bundle_dir(operation) / "make_table.wdl").read_text()
    assert f'docker: "ferrydemo/make-table:{rev}"' in imported

    job = run_job(
        client_for("editor"),
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"num_rows": 2, "scale": "log2"},
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"], timeout=180)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.run_spec["inputs"] == {
        "TableDemo.num_rows": 2,
        "TableDemo.num_cols": 3,
        "TableDemo.scale": "log2",
    }
    merged = File.objects.get(pk=done.outputs["merged"])
    assert (merged.resource_type, merged.file_type) == ("EXP_MTX", "table")
    rows = content(client_for("editor"), str(merged.pk)).splitlines()
    assert rows[0] == "gene\ts1\ts2\ts3"
    assert [r.split("\t")[0] for r in rows[1:]] == [
        "a-g1",
        "a-g2",
        "b-g1",
        "b-g2",
    ]
    summary = File.objects.get(pk=done.outputs["summary"])
    assert summary.resource_type == "JSON"
    assert json.loads(content(client_for("editor"), str(summary.pk))) == {"rows": 4}


@pytest.mark.usefixtures("server_record")
def test_hcl_on_the_cromwell_test_server_gets_fqn_inputs_and_typed_outputs(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The same operation routed to a Cromwell server (the test server runs it with miniwdl and
    reports s3:// outputs by FQN): the kept workflow is submitted as it is, with its tag."""
    operation = add_operation(client_for, copy_op(tmp_path, "mev-hcl"))
    editor = client_for("editor")
    matrix = upload(editor, workspace, MATRIX, "counts.tsv")
    job = run_job(
        editor,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"input_matrix": matrix, "linkage": "average"},
            "executor": EXECUTOR,
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"], timeout=180)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.run_spec["inputs"]["HierarchicalCluster.linkage"] == "average"
    assert (
        operation.spec["wdl"]["images"]["ghcr.io/web-mev/mev-hcl"]
        in (done.run_spec["workflow_source"])
    )
    clusters = File.objects.get(pk=done.outputs["observation_clusters"])
    assert (clusters.resource_type, clusters.file_type) == ("JSON", "json")
    assert "s3" in clusters.storage_uri
    assert "s4" in content(editor, str(clusters.pk))


def _edit_spec(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "operation_spec.json"
    spec = json.loads(path.read_text())
    change(spec)
    path.write_text(json.dumps(spec, indent=4))


def _replace(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _unknown_input(folder: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["inputs"]["TableDemo.rows"] = spec["inputs"].pop("TableDemo.num_cols")

    _edit_spec(folder, change)


def _required_input_left_out(folder: Path) -> None:
    _edit_spec(folder, lambda spec: spec["inputs"].pop("TableDemo.num_rows"))


def _unknown_output(folder: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["outputs"]["TableDemo.report"] = spec["outputs"].pop("TableDemo.summary")

    _edit_spec(folder, change)


def _missing_dockerfile(folder: Path) -> None:
    (folder / "docker" / "Dockerfile.count-rows").unlink()


def _traversing_image(folder: Path) -> None:
    _replace(folder, "make_table.wdl", '"ferrydemo/make-table"', '"ghcr.io/web-mev/../../etc"')


def _foreign_image(folder: Path) -> None:
    """A Dockerfile that would be built over an image Ferry did not build for this operation."""
    _replace(folder, "main.wdl", '"ferrydemo/merge-tables:1.0"', '"ferry/busybox:latest"')
    shutil.copy(
        folder / "docker" / "Dockerfile.count-rows", folder / "docker" / "Dockerfile.busybox"
    )


def _image_by_digest(folder: Path) -> None:
    digest = "sha256:" + "a" * 64
    _replace(
        folder, "main.wdl", '"ferrydemo/merge-tables:1.0"', f'"ferrydemo/merge-tables@{digest}"'
    )


def _task_without_image(folder: Path) -> None:
    _replace(folder, "main.wdl", 'docker: "docker.io/ferrydemo/count-rows"', "")


def _image_not_literal(folder: Path) -> None:
    _replace(folder, "main.wdl", '"ferrydemo/merge-tables:1.0"', '"ferrydemo/" + scale')


@pytest.mark.parametrize(
    ("damage", "code", "where", "says"),
    [
        (_unknown_input, "invalid_spec", '$.inputs["TableDemo.rows"]', "names no input"),
        (_required_input_left_out, "invalid_spec", "$.inputs", "TableDemo.num_rows"),
        (_unknown_output, "invalid_spec", '$.outputs["TableDemo.report"]', "names no output"),
        (_missing_dockerfile, "invalid_workflow", "main.wdl:", "docker/Dockerfile.count-rows"),
        (_traversing_image, "invalid_workflow", "make_table.wdl:16:", "not a valid image name"),
        (_foreign_image, "invalid_workflow", "main.wdl:48:", "won't replace it"),
        (_image_not_literal, "invalid_workflow", "main.wdl:48:", "string literal"),
        (_image_by_digest, "invalid_workflow", "main.wdl:48:", "pinned by digest"),
        (_task_without_image, "invalid_workflow", "main.wdl:54:", "task countRows names no image"),
    ],
)
def test_refused_with_where_the_problem_is_and_nothing_recorded(
    client_for: Callable[[str], APIClient],
    tmp_path: Path,
    damage: Callable[[Path], None],
    code: str,
    where: str,
    says: str,
) -> None:
    folder = copy_op(tmp_path, "table-demo")
    damage(folder)
    answer = add(client_for, folder)
    assert answer.status_code == 400, answer.json()
    body = answer.json()
    assert body["code"] == code, body
    if code == "invalid_spec":
        assert any(says in m for m in body["details"][where]), body
    else:
        assert any(line.startswith(where) and says in line for line in body["details"]["workflow"])
    assert not Operation.objects.exists()
