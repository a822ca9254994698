"""WebMEV's own operation repositories, added unchanged and run as jobs.

Needs copies of the ``web-mev`` repositories: set ``FERRY_WEBMEV_MIRRORS`` to a folder holding
``web-mev+<repo>/repo`` (bare git mirrors, e.g. what the ``fetch`` tool brings:
``FERRY_WEBMEV_MIRRORS=/work/.mirror``); without it these tests are skipped.

Each repository is cloned at a named commit and added through ``POST /api/operations/`` as it
is (its spec, entrypoint and Dockerfile untouched). WebMEV would pull the image GitHub Actions
published for that commit; no registry is reachable, so the test builds a stand-in image (FROM
the tests' local Python image, with a standard-library script at the path the real entrypoint
calls: tests/e2e/webmev_ops/<op>/docker/ or tests/e2e/webmev_standins/<op>/) and tags it as
WebMEV names it, ``ghcr.io/web-mev/<repo>:sha-<commit>``. Ferry finds it there and builds
nothing. The jobs take realistic inputs (a workspace's sample set, an inline gene set, booleans,
options) and their outputs are Files with WebMEV resource types. Tried: pca, mev-matrix-subset,
mev-gene-mapper.

``test_conversion_of_other_published_operations`` converts (no job) the other repositories and
commits tried; docs/webmev.md ("What was tried") lists the outcomes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from rest_framework.test import APIClient

from api.models import File, FileStatus, Workspace
from operations import webmev
from operations.models import Operation
from operations.spec import SpecError
from operations.states import JobStatus
from tests.e2e.test_jobs import wait_terminal
from tests.e2e.test_webmev_local_docker import MATRIX, OPS, content, run_job, upload
from tests.harness.docker import ensure_docker, ensure_swarm
from tests.harness.python_image import PYTHON_IMAGE, ensure_python_image

pytestmark = pytest.mark.django_db

MIRRORS_VARIABLE = "FERRY_WEBMEV_MIRRORS"
MIRRORS = os.environ.get(MIRRORS_VARIABLE, "")
if not MIRRORS:
    pytest.skip(
        f"{MIRRORS_VARIABLE} is not set: point it to a folder holding web-mev+pca/repo, "
        "web-mev+mev-matrix-subset/repo, … (bare git mirrors of github.com/web-mev)",
        allow_module_level=True,
    )

# The commits tried (each repository's HEAD when fetched, 2024).
PCA = ("pca", "4a9b9e76b7ac03793184ccf3d1b27f08c51341a7")
SUBSET = ("mev-matrix-subset", "0fb0d7451c1a251d47ccc4a362e597c3315540c2")
GENE_MAPPER = ("mev-gene-mapper", "266a023ae44427582fdc8f822e99f07bfdbc1b45")
HCL = ("mev-hcl", "1363f29ed25a8f4e907407609015091530f813ec")  # the last cromwell commit
ENTRYPOINT_SCRIPT_RE = re.compile(r"^(?:python3 )?(/usr/local/bin/[\w.]+\.(?:py|sh)) ")
STAND_INS = Path(__file__).parent / "webmev_standins"


def mirror(repository: str) -> Path:
    path = Path(MIRRORS) / f"web-mev+{repository}" / "repo"
    if not path.is_dir():
        pytest.skip(f"no mirror of web-mev/{repository} at {path}")
    return path


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=300
    )
    return done.stdout


def clone(repository: str, commit: str, tmp_path: Path, *, bare: bool = True) -> Path:
    """A clone named as on GitHub (``<repo>.git`` when bare, else ``<repo>``), holding ``commit``.
    (Some mirrors lack blobs of old commits: a bare clone of them can't be cloned over
    ``file://``, a plain local clone can.)"""
    target = tmp_path / (f"{repository}.git" if bare else repository)
    git("clone", "--quiet", *(["--bare"] if bare else []), str(mirror(repository)), str(target))
    git("cat-file", "-e", f"{commit}^{{commit}}", cwd=target)
    return target


@pytest.fixture
def published() -> Iterator[Callable[[Path, str, str], str]]:
    """``tag(repo, commit, op)``: build the stand-in for ``op`` — its script at the path the
    repository's real entrypoint.txt calls — tagged as WebMEV names the image of that commit."""
    ensure_docker()
    ensure_python_image()
    client: Any = docker.from_env()
    tags: list[str] = []

    def tag(repo: Path, commit: str, op: str) -> str:
        entrypoint = git("show", f"{commit}:entrypoint.txt", cwd=repo)
        found = ENTRYPOINT_SCRIPT_RE.match(entrypoint)
        assert found, entrypoint
        script = Path(found.group(1))
        context = STAND_INS / op
        if not context.is_dir():  # the stand-in folders' own script
            stand_in = OPS / op / "docker" / script.name
            assert stand_in.is_file(), f"no stand-in {stand_in} for {script}"
            context = repo.parent / f"{op}-stand-in"
            context.mkdir()
            (context / script.name).write_bytes(stand_in.read_bytes())
            (context / "Dockerfile").write_text(
                f"FROM {PYTHON_IMAGE}\nCOPY {script.name} {script}\n"
            )
        assert f"{script.name} " in (context / "Dockerfile").read_text()
        name = f"ghcr.io/web-mev/{op}:sha-{commit}"
        client.images.build(path=str(context), tag=name, rm=True, forcerm=True, pull=False)
        tags.append(name)
        return name

    try:
        yield tag
    finally:
        for name in tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(name, force=True)
        client.close()


def add_unchanged(
    client_for: Callable[[str], APIClient], repo: Path, commit: str, image: str
) -> Operation:
    source = repo.as_uri() if repo.suffix == ".git" else str(repo)
    answer = client_for("staff").post(
        "/api/operations/", {"source": source, "commit": commit}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["revision"], body["image"], body["image_origin"]) == (commit, image, "found")
    operation = Operation.objects.get(pk=body["id"])
    # The spec is the repository's, converted: every input and output it declares is there.
    declared = json.loads(git("show", f"{commit}:operation_spec.json", cwd=repo))
    assert set(operation.spec["inputs"]) == set(declared["inputs"])
    assert set(operation.spec["outputs"]) == set(declared["outputs"])
    assert operation.spec["webmev"]["name"] == declared["name"]
    return operation


def test_real_pca_runs_with_a_workspace_sample_set(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    published: Callable[[Path, str, str], str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    repository, commit = PCA
    repo = clone(repository, commit, tmp_path)
    image = published(repo, commit, repository)
    operation = add_unchanged(client_for, repo, commit, image)

    client = client_for("editor")
    matrix = upload(client, workspace, MATRIX, "rnaseq_counts.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "RNASEQ_COUNT_MTX"}, format="json")
    ).status_code == 200
    samples = client.post(
        "/api/sets/",
        {
            "workspace": str(workspace.pk),
            "kind": "observation",
            "name": "without s6",
            "elements": [
                {"id": s, "attributes": {"group": {"attribute_type": "String", "value": g}}}
                for s, g in (("s1", "A"), ("s2", "A"), ("s3", "A"), ("s4", "B"), ("s5", "B"))
            ],
        },
        format="json",
    )
    assert samples.status_code == 201, samples.json()
    job = run_job(
        client,
        workspace,
        operation,
        {"input_matrix": matrix, "samples": {"set": samples.json()["id"]}},
        django_capture_on_commit_callbacks,
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.run_spec["argv"][:2] == ["python3", "/usr/local/bin/run_pca.py"]
    assert job.run_spec["argv"][-2:] == ["-s", "s1,s2,s3,s4,s5"]
    coordinates = File.objects.get(pk=job.outputs["pca_coordinates"])
    assert coordinates.status == FileStatus.READY
    assert (coordinates.file_type, coordinates.resource_type) == ("table", "MTX")
    assert client.get(f"/api/files/{coordinates.pk}/").json()["resource_type"] == "MTX"
    assert len(content(client, str(coordinates.pk)).splitlines()) == 6  # header + 5 samples
    assert 0.5 < job.outputs["pc1_explained_variance"] <= 1.0
    assert 0.0 <= job.outputs["pc2_explained_variance"] < job.outputs["pc1_explained_variance"]


def test_real_matrix_subset_runs_with_sets_and_booleans(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    published: Callable[[Path, str, str], str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    repository, commit = SUBSET
    repo = clone(repository, commit, tmp_path)
    image = published(repo, commit, repository)
    operation = add_unchanged(client_for, repo, commit, image)

    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "expression.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "EXP_MTX"}, format="json")
    ).status_code == 200
    genes = client.post(
        "/api/sets/",
        {
            "workspace": str(workspace.pk),
            "kind": "feature",
            "name": "low genes",
            "elements": [{"id": "G3"}, {"id": "G4"}],
        },
        format="json",
    )
    assert genes.status_code == 201, genes.json()
    inputs = {
        "input_matrix": matrix,
        "samples": {"elements": [{"id": "s1"}, {"id": "s4"}]},
        "features": {"set": genes.json()["id"]},
        "keepsamples": True,
        "keepfeatures": False,
    }
    job = run_job(client, workspace, operation, inputs, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    argv = job.run_spec["argv"]
    assert argv[3].endswith(":::EXP_MTX")
    assert argv[4:] == ["-s", "s1,s4", "-f", "G3,G4", "--keepcols"]
    reduced = File.objects.get(pk=job.outputs["reduced_matrix"])
    assert (reduced.file_type, reduced.resource_type) == ("table", "EXP_MTX")
    assert content(client, str(reduced.pk)) == "gene\ts1\ts4\nG1\t10\t30\nG2\t5\t20\n"


def test_real_gene_mapper_runs_with_its_options(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    published: Callable[[Path, str, str], str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """OptionString inputs rendered unquoted into a shell script's arguments, a with-type input,
    a variable output keeping the input's type and a fixed-type (FT) output."""
    repository, commit = GENE_MAPPER
    repo = clone(repository, commit, tmp_path, bare=False)
    image = published(repo, commit, repository)
    operation = add_unchanged(client_for, repo, commit, image)

    client = client_for("owner")
    table = "gene\ts1\ts2\nG1\t1\t2\nG9\t0\t0\nG3\t5\t6\n"
    matrix = upload(client, workspace, table, "by_alias.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "I_MTX"}, format="json")
    ).status_code == 200
    inputs = {
        "input_file": matrix,
        "organism": "Human",
        "initial_id": "Symbol",
        "final_id": "Ensembl",
    }
    # Symbol -> Ensembl: the stand-in table's symbols are GENEA…, so nothing maps: a failed job.
    failed = run_job(client, workspace, operation, inputs, django_capture_on_commit_callbacks)
    assert failed.status == JobStatus.FAILED
    assert "No identifier of the table is in the mapping" in (
        failed.error_message + failed.stderr_tail
    )

    renamed = "gene\ts1\ts2\nGENEA\t1\t2\nGENEX\t0\t0\nGENEC\t5\t6\n"
    matrix = upload(client, workspace, renamed, "by_symbol.tsv")
    assert (
        client.patch(f"/api/files/{matrix}/", {"resource_type": "I_MTX"}, format="json")
    ).status_code == 200
    job = run_job(
        client,
        workspace,
        operation,
        {**inputs, "input_file": matrix},
        django_capture_on_commit_callbacks,
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.run_spec["argv"][0] == "/usr/local/bin/run.sh"
    assert job.run_spec["argv"][2:] == ["Human", "Symbol", "Ensembl"]
    remapped = File.objects.get(pk=job.outputs["remapped_file"])
    assert (remapped.file_type, remapped.resource_type) == ("table", "I_MTX")
    assert remapped.name == "ENSEMBL_remapped_results.tsv"
    assert content(client, str(remapped.pk)) == (
        "gene\ts1\ts2\nENSG00000000001\t1\t2\nENSG00000000003\t5\t6\n"
    )
    mapping = File.objects.get(pk=job.outputs["mapping"])
    assert (mapping.file_type, mapping.resource_type) == ("table", "FT")


def test_real_hcl_cromwell_mode_runs_on_miniwdl(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """WebMEV's Cromwell mode: the real mev-hcl (draft-2 main.wdl whose task names the untagged
    ``ghcr.io/web-mev/mev-hcl``), added unchanged; its image for the commit is on the engine
    (a stand-in with ``/usr/local/bin/run_hcl.py``), so nothing is built; the job runs on
    miniwdl with WebMEV's FQN inputs and defaults. Needs Cromwell-mode ingestion
    (``operations.webmev_cromwell``) using the published image."""
    pytest.importorskip("operations.webmev_cromwell", reason="no Cromwell-mode ingestion here")
    stand_in = OPS / "mev-hcl" / "docker" / "run_hcl.py"
    if not stand_in.is_file():
        pytest.skip(f"no stand-in script {stand_in}")
    ensure_swarm()
    ensure_python_image()
    settings.FERRY_VAR_DIR = tmp_path / "var"
    repository, commit = HCL
    repo = clone(repository, commit, tmp_path)
    assert "python3 /usr/local/bin/run_hcl.py" in git("show", f"{commit}:main.wdl", cwd=repo)
    context = tmp_path / "hcl-stand-in"
    context.mkdir()
    (context / "run_hcl.py").write_bytes(stand_in.read_bytes())
    (context / "Dockerfile").write_text(
        f"FROM {PYTHON_IMAGE}\nCOPY run_hcl.py /usr/local/bin/run_hcl.py\n"
    )
    image = f"ghcr.io/web-mev/{repository}:sha-{commit}"
    engine: Any = docker.from_env()
    try:
        engine.images.build(path=str(context), tag=image, rm=True, forcerm=True, pull=False)
        answer = client_for("staff").post(
            "/api/operations/", {"source": repo.as_uri(), "commit": commit}, format="json"
        )
        assert answer.status_code == 201, answer.json()
        operation = Operation.objects.get(pk=answer.json()["id"])
        assert operation.spec["wdl"]["images"] == {f"ghcr.io/web-mev/{repository}": image}
        assert "org.ferry.operation" not in (engine.images.get(image).labels or {})  # not built

        client = client_for("editor")
        matrix = upload(client, workspace, MATRIX, "counts.tsv")
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(
                "/api/jobs/",
                {
                    "operation": str(operation.pk),
                    "workspace": str(workspace.pk),
                    "inputs": {"input_matrix": matrix, "clustering_dimension": "both"},
                },
                format="json",
            )
        assert created.status_code == 201, created.json()
        job = wait_terminal(created.json()["id"], timeout=180)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            engine.images.remove(image, force=True)
        engine.close()
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.run_spec["inputs"]["HierarchicalCluster.linkage"] == "ward"  # the default
    for output in ("observation_clusters", "feature_clusters"):
        result = File.objects.get(pk=job.outputs[output])
        assert (result.file_type, result.resource_type) == ("json", "JSON")


# The other operations tried, converted only. Outcome: the Ferry mode, or the refusal's reason.
OTHERS = [
    ("deseq2", "53e6fcb", "docker"),  # the last local_docker commit: R, DESeq2
    ("deseq2", "44e274c", "WebMEV's AWS ECS runner isn't supported"),
    ("mev-fgsea", "eefa130", "docker"),  # the last local_docker commit
    ("mev-fgsea", "9efeea4", "WebMEV's AWS ECS runner isn't supported"),
    ("mev-hcl", "1363f29", "wdl"),  # the last cromwell commit
    ("mev-hcl", "8fe4655", "Nextflow isn't supported"),
    ("mev-lioness", "2e6e3ed", "wdl"),  # the last cromwell commit (8453811^)
    ("mev-lioness", "7d72ca8", "Nextflow isn't supported"),
    ("mev-sctk-mast", "e9679f4", "wdl"),
    ("mev-sctk-mast", "79b8ec8", "Nextflow isn't supported"),
    ("demo-cromwell-workflow", "36332a7", "wdl"),
    # 2020: converters in converters.json, an output without "required"/"converter".
    ("demo-cromwell-workflow", "8db7a90", '$.outputs["DemoWorkflow.f1"].required: is required'),
]


@pytest.mark.parametrize(("repository", "commit", "outcome"), OTHERS)
def test_conversion_of_other_published_operations(
    tmp_path: Path, repository: str, commit: str, outcome: str
) -> None:
    repo = clone(repository, commit, tmp_path)

    def read(name: str) -> str | None:
        try:
            return git("show", f"{commit}:{name}", cwd=repo)
        except subprocess.CalledProcessError:
            return None

    spec = read(webmev.SPEC_FILENAME)
    assert spec is not None

    def convert() -> dict[str, Any]:
        return webmev.convert_webmev(
            spec,
            entrypoint=read(webmev.ENTRYPOINT_FILENAME),
            converters=read(webmev.CONVERTERS_FILENAME),
            folder_name=repository,
        )

    if outcome in ("docker", "wdl"):
        assert convert()["mode"] == outcome
    else:
        with pytest.raises(SpecError) as refused:
            convert()
        assert outcome in refused.value.describe(), refused.value.describe()
