"""WebMEV operations added from git run the image WebMEV publishes for their commit.

WebMEV never builds a local_docker operation's image: it pulls
``ghcr.io/web-mev/<repository>:sha-<commit>`` (or ``docker.io/web-mev/<repository>:<commit>``),
which the repository's GitHub Actions built from ``docker/Dockerfile``. No registry is reachable
here, so these tests commit the stand-in folders of tests/e2e/webmev_ops/ to a git repository,
build the stand-in image and tag it as WebMEV names it for that repository and commit, add the
repository through the API and run jobs on it — no network.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from rest_framework.test import APIClient

from api.models import File, FileStatus, Workspace
from operations.ingestion import image_tag
from operations.models import Operation
from operations.states import JobStatus
from tests.e2e.test_webmev_local_docker import MATRIX, OPS, content, run_job, upload
from tests.harness.docker import ensure_docker
from tests.harness.python_image import ensure_python_image

pytestmark = pytest.mark.django_db

OPERATIONS_URL = "/api/operations/"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Ferry tests", "-c", "user.email=tests@ferry.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def commit_folder(folder: Path) -> str:
    """Make ``folder`` a git repository holding its files in one commit; the commit's sha."""
    git("init", "--quiet", "--initial-branch=main", cwd=folder)
    git("add", "-A", cwd=folder)
    git("commit", "--quiet", "-m", "WebMEV operation", cwd=folder)
    return git("rev-parse", "HEAD", cwd=folder)


@pytest.fixture
def images() -> Iterator[Callable[[Path, str], None]]:
    """``build(context, name)``: build a stand-in image and tag it; every tag is removed after
    the test (so a later test never finds it)."""
    ensure_docker()
    ensure_python_image()
    client: Any = docker.from_env()
    tags: list[str] = []

    def build(context: Path, name: str) -> None:
        client.images.build(path=str(context), tag=name, rm=True, forcerm=True, pull=False)
        tags.append(name)

    try:
        yield build
    finally:
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, force=True)
        client.close()


def add(client_for: Callable[[str], APIClient], source: str) -> Any:
    return client_for("staff").post(OPERATIONS_URL, {"source": source}, format="json")


def assert_not_built(operation: Operation) -> None:
    client: Any = docker.from_env()
    try:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(image_tag(operation.name, operation.version, operation.revision))
    finally:
        client.close()


def test_pca_from_git_runs_the_image_webmev_publishes_for_its_commit(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    images: Callable[[Path, str], None],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Before, Ferry built ``docker/Dockerfile`` whatever the engine held: a real WebMEV folder
    (FROM mambaorg/micromamba) could never be added without a registry."""
    repo = tmp_path / "pca"
    shutil.copytree(OPS / "pca", repo)
    commit = commit_folder(repo)
    published = f"ghcr.io/web-mev/pca:sha-{commit}"
    images(repo / "docker", published)

    answer = add(client_for, str(repo))

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["image"], body["image_origin"], body["revision"]) == (published, "found", commit)
    operation = Operation.objects.get(pk=body["id"])
    assert operation.image_origin == "found"
    assert published in operation.build_log
    assert_not_built(operation)

    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")
    samples = {"elements": [{"id": s} for s in ("s1", "s2", "s4", "s5")]}
    job = run_job(
        client,
        workspace,
        operation,
        {"input_matrix": matrix, "samples": samples},
        django_capture_on_commit_callbacks,
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert job.run_spec["image"] == published
    assert job.run_spec["argv"][-2:] == ["-s", "s1,s2,s4,s5"]
    coordinates = File.objects.get(pk=job.outputs["pca_coordinates"])
    assert coordinates.status == FileStatus.READY
    assert (coordinates.file_type, coordinates.resource_type) == ("table", "MTX")
    rows = content(client, str(coordinates.pk)).splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == ["s1", "s2", "s4", "s5"]
    assert 0.5 < job.outputs["pc1_explained_variance"] <= 1.0


def test_matrix_subset_from_a_file_url_finds_the_docker_hub_name(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    tmp_path: Path,
    images: Callable[[Path, str], None],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The repository name is the URL's last part without ``.git``, in lower case; the Docker
    Hub name (``docker.io/web-mev/<repo>:<commit>``) is found too."""
    work = tmp_path / "work"
    shutil.copytree(OPS / "mev-matrix-subset", work)
    commit = commit_folder(work)
    bare = tmp_path / "Mev-Matrix-Subset.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    published = f"docker.io/web-mev/mev-matrix-subset:{commit}"
    images(work / "docker", published)

    answer = add(client_for, bare.as_uri())

    assert answer.status_code == 201, answer.json()
    assert (answer.json()["image"], answer.json()["image_origin"]) == (published, "found")
    operation = Operation.objects.get(pk=answer.json()["id"])
    assert_not_built(operation)
    client = client_for("owner")
    matrix = upload(client, workspace, MATRIX, "counts.tsv")
    typed = client.patch(f"/api/files/{matrix}/", {"resource_type": "I_MTX"}, format="json")
    assert typed.status_code == 200, typed.json()
    genes = client.post(
        "/api/sets/",
        {
            "workspace": str(workspace.pk),
            "kind": "feature",
            "name": "strong genes",
            "elements": [{"id": "G1"}, {"id": "G2"}],
        },
        format="json",
    )
    assert genes.status_code == 201, genes.json()
    inputs = {
        "input_matrix": matrix,
        "samples": {"elements": [{"id": "s3"}, {"id": "s6"}]},
        "features": {"set": genes.json()["id"]},
        "keepsamples": False,
        "keepfeatures": True,
    }
    job = run_job(client, workspace, operation, inputs, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    reduced = File.objects.get(pk=job.outputs["reduced_matrix"])
    assert (reduced.file_type, reduced.resource_type) == ("table", "I_MTX")
    assert content(client, str(reduced.pk)) == (
        "gene\ts1\ts2\ts4\ts5\nG1\t10\t11\t30\t31\nG2\t5\t6\t20\t19\n"
    )


def test_without_the_published_image_a_base_image_that_cant_be_pulled_says_how_to_provide_it(
    client_for: Callable[[str], APIClient], tmp_path: Path, images: Callable[[Path, str], None]
) -> None:
    """WebMEV's Dockerfiles start FROM images no registry here serves: the 400 names the images
    Ferry looked for and the ``docker tag`` that provides one."""
    repo = tmp_path / "pca"
    shutil.copytree(OPS / "pca", repo)
    (repo / "docker" / "Dockerfile").write_text(
        "FROM ferry-test/no-such-base:never\nCOPY run_pca.py /usr/local/bin/run_pca.py\n"
    )
    commit = commit_folder(repo)

    answer = add(client_for, str(repo))

    assert answer.status_code == 400, answer.json()
    body = answer.json()
    assert body["code"] == "build_failed"
    message = body["message"]
    for expected in (
        f"ghcr.io/web-mev/pca:sha-{commit}",
        f"docker.io/web-mev/pca:{commit}",
        "its base image ferry-test/no-such-base:never can't be pulled here",
        f"`docker tag <your image> ghcr.io/web-mev/pca:sha-{commit}`",
    ):
        assert expected in message, message
    assert body["details"]["image"] == [message.split("\n")[0]]
    assert not Operation.objects.exists()


def test_without_the_published_image_a_git_webmev_operation_is_built_as_before(
    client_for: Callable[[str], APIClient], tmp_path: Path, images: Callable[[Path, str], None]
) -> None:
    repo = tmp_path / "pca"
    shutil.copytree(OPS / "pca", repo)
    commit = commit_folder(repo)
    images(repo / "docker", f"ghcr.io/web-mev/pca:sha-{'0' * 40}")  # another commit's image

    answer = add(client_for, str(repo))

    assert answer.status_code == 201, answer.json()
    operation = Operation.objects.get(pk=answer.json()["id"])
    assert operation.image == image_tag(operation.name, operation.version, commit)
    assert operation.image_origin == "built"
    images_client: Any = docker.from_env()
    try:
        images_client.images.remove(operation.image, force=True)
    finally:
        images_client.close()
