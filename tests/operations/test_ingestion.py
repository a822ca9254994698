"""Adding operations for real: folders, git repositories (file://), WebMEV folders, failing builds,
the management commands, and the example operations run in the sandbox the executor uses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from operations.examples import (
    BASE_IMAGE,
    BUSYBOX,
    EXAMPLES_DIR,
    BaseImageError,
    ensure_base_image,
    example_folders,
    is_static_executable,
)
from operations.ingestion import IngestionError, folder_digest, image_tag, ingest_operation
from operations.management.commands.ferry_add_operation import Command as AddOperationCommand
from operations.models import Operation
from operations.spec import SpecError, parse_spec, render_argv, render_command

TEST_PREFIX = "test-ingest-"

SCRIPT = """#!/bin/sh
set -eu
echo "{{\\"said\\": \\"said.txt\\"}}" > outputs.json
echo "$1 ({version})" > said.txt
"""


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()
    ensure_base_image(client)
    yield client
    # Remove the images these tests built for their throw-away operations.
    for image in client.images.list(filters={"label": "org.ferry.operation"}):
        if image.labels.get("org.ferry.operation", "").startswith(TEST_PREFIX):
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)
    client.close()


def write_operation(
    folder: Path,
    name: str = TEST_PREFIX + "echo",
    version: str = "1.0.0",
    dockerfile: str | None = None,
    spec: dict[str, Any] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = spec or {
        "name": name,
        "version": version,
        "description": "Says something.",
        "command": "/opt/op/say.sh {{ text }}",
        "inputs": {"text": {"type": "string"}},
        "outputs": {"said": {"type": "file", "file_type": "text"}},
    }
    (folder / "operation.json").write_text(json.dumps(spec, indent=2))
    (folder / "say.sh").write_text(SCRIPT.format(version=version))
    if dockerfile is None:
        dockerfile = (
            f"FROM {BASE_IMAGE}\nCOPY say.sh /opt/op/say.sh\nRUN chmod 0755 /opt/op/say.sh\n"
        )
    (folder / "Dockerfile").write_text(dockerfile)
    return folder


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ferry Tests",
        "GIT_AUTHOR_EMAIL": "tests@ferry.invalid",
        "GIT_COMMITTER_NAME": "Ferry Tests",
        "GIT_COMMITTER_EMAIL": "tests@ferry.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def run_in_sandbox(
    image: str, command: str, workdir: Path, mounts: dict[Path, str]
) -> subprocess.CompletedProcess[str]:
    """Run like the local Docker executor does: no network, read-only root, uid 65534."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o777)  # writable by uid 65534
    args = ["docker", "run", "--rm", "--network", "none", "--read-only"]
    args += ["--user", "65534:65534", "-v", f"{workdir}:/work", "-w", "/work"]
    for source, target in mounts.items():
        source.chmod(0o644)
        args += ["-v", f"{source}:{target}:ro"]
    args += [image, "sh", "-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


# --- folders --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_example_folder_is_added_once(docker_client: docker.DockerClient) -> None:
    messages: list[str] = []
    folder = EXAMPLES_DIR / "table-summary"
    operation, created = ingest_operation(str(folder), progress=messages.append)
    assert created is True
    assert operation.name == "table-summary"
    assert operation.version == "1.0.0"
    assert operation.revision == folder_digest(folder)
    assert operation.image == image_tag("table-summary", "1.0.0", operation.revision)
    assert operation.image.startswith("ferry-op/table-summary:1.0.0-")
    assert operation.spec == parse_spec((folder / "operation.json").read_bytes())
    assert operation.source == str(folder)
    assert operation.mode == "docker"
    assert "Step 1/" in operation.build_log
    image = docker_client.images.get(operation.image)
    assert image.labels["org.ferry.revision"] == operation.revision
    assert any(m.startswith("Step ") for m in messages)
    assert any(m.startswith("Built ferry-op/table-summary") for m in messages)

    messages.clear()
    again, created_again = ingest_operation(str(folder), progress=messages.append)
    assert (again.pk, created_again) == (operation.pk, False)
    assert not any(m.startswith(("Step ", "Building")) for m in messages)
    assert Operation.objects.count() == 1


@pytest.mark.django_db
def test_changed_folder_is_a_new_operation(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    folder = write_operation(tmp_path / "op")
    first, _ = ingest_operation(str(folder))
    recorded = (first.revision, first.image, first.spec, first.build_log)
    (folder / "say.sh").write_text(SCRIPT.format(version="edited"))
    second, created = ingest_operation(str(folder))
    assert created
    assert second.pk != first.pk
    assert second.revision != first.revision
    assert second.version == first.version
    assert second.image != first.image
    # The first row is untouched: operations are immutable.
    first.refresh_from_db()
    assert (first.revision, first.image, first.spec, first.build_log) == recorded
    assert Operation.objects.filter(name=first.name).count() == 2


def test_folder_digest_covers_paths_contents_and_executable_bits(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.sh").write_text("echo hi\n")
    (tmp_path / "b.txt").write_text("b\n")
    digest = folder_digest(tmp_path)
    assert len(digest) == 64
    assert digest == folder_digest(tmp_path)
    (tmp_path / "empty").mkdir()
    assert folder_digest(tmp_path) == digest  # empty folders don't count
    (tmp_path / "a" / "x.sh").chmod(0o755)
    executable = folder_digest(tmp_path)
    assert executable != digest
    (tmp_path / "b.txt").rename(tmp_path / "c.txt")
    assert folder_digest(tmp_path) != executable


def test_base_image_is_built_from_scratch_and_busybox(docker_client: docker.DockerClient) -> None:
    tag = f"{TEST_PREFIX}busybox:{uuid.uuid4().hex[:8]}"
    try:
        image_id = ensure_base_image(docker_client, tag=tag)
        assert docker_client.images.get(tag).id == image_id
        assert ensure_base_image(docker_client, tag=tag) == image_id  # present: not rebuilt
        out = docker_client.containers.run(
            tag,
            ["sh", "-c", "awk 'BEGIN { print 6 * 7 }'; ls -d /tmp /work; id -un"],
            remove=True,
            network_mode="none",
            user="65534:65534",
        )
        assert out.decode().split() == ["42", "/tmp", "/work", "nobody"]
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(tag, force=True)


def test_base_image_needs_a_static_busybox(tmp_path: Path) -> None:
    client = docker.from_env()
    tag = f"{TEST_PREFIX}never:latest"
    with pytest.raises(BaseImageError, match="apt-get install busybox-static"):
        ensure_base_image(client, busybox=tmp_path / "busybox", tag=tag)
    with pytest.raises(BaseImageError, match="not a static executable"):
        ensure_base_image(client, busybox=Path(sys.executable).resolve(), tag=tag)
    assert is_static_executable(BUSYBOX)


# --- git ------------------------------------------------------------------------------------------


@pytest.fixture
def two_commit_repo(tmp_path: Path) -> tuple[Path, str, str]:
    repo = write_operation(tmp_path / "repo", name=TEST_PREFIX + "git", version="1.0.0")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    write_operation(repo, name=TEST_PREFIX + "git", version="1.1.0")
    git(repo, "commit", "--quiet", "-am", "second")
    second = git(repo, "rev-parse", "HEAD")
    return repo, first, second


@pytest.mark.django_db
def test_git_commits_are_separate_operations(
    docker_client: docker.DockerClient, two_commit_repo: tuple[Path, str, str]
) -> None:
    repo, first, second = two_commit_repo
    url = f"file://{repo}"
    op1, created1 = ingest_operation(url, commit=first)
    op2, created2 = ingest_operation(url, commit=second)
    assert created1
    assert created2
    assert (op1.revision, op1.version) == (first, "1.0.0")
    assert (op2.revision, op2.version) == (second, "1.1.0")
    assert op1.source == op2.source == url
    assert op1.image == f"ferry-op/{TEST_PREFIX}git:1.0.0-{first[:12]}"
    assert docker_client.images.get(op2.image).labels["org.ferry.revision"] == second

    # Again at commit 1 (by a short sha), and the default branch's HEAD (commit 2): no-ops.
    again, created = ingest_operation(url, commit=first[:10])
    assert (again.pk, created) == (op1.pk, False)
    head, created = ingest_operation(url)
    assert (head.pk, created) == (op2.pk, False)
    assert Operation.objects.count() == 2

    # What was built is the commit, not the work tree: run commit 1's image.
    run = docker_client.containers.run(
        op1.image,
        ["sh", "-c", "/opt/op/say.sh hi && cat said.txt"],
        remove=True,
        working_dir="/tmp",
    )
    assert run.decode().strip() == "hi (1.0.0)"


@pytest.mark.django_db
def test_local_repository_uses_its_commits_not_uncommitted_changes(
    docker_client: docker.DockerClient, two_commit_repo: tuple[Path, str, str]
) -> None:
    repo, _first, second = two_commit_repo
    (repo / "say.sh").write_text("#!/bin/sh\nexit 1\n")  # not committed
    messages: list[str] = []
    operation, created = ingest_operation(str(repo), progress=messages.append)
    assert created
    assert operation.revision == second
    assert operation.source == str(repo)
    assert any("uncommitted changes" in m for m in messages)


@pytest.mark.django_db
def test_git_sources_that_cannot_be_fetched(tmp_path: Path, two_commit_repo: Any) -> None:
    repo = two_commit_repo[0]
    with pytest.raises(IngestionError) as caught:
        ingest_operation(f"file://{tmp_path}/no-such-repo.git")
    assert caught.value.code == "invalid_source"
    assert "could not clone" in caught.value.message
    with pytest.raises(IngestionError) as caught:
        ingest_operation(f"file://{repo}", commit="0" * 40)
    assert "has no commit" in caught.value.message
    with pytest.raises(IngestionError) as caught:
        ingest_operation("https://user:secret@git.invalid/op.git")
    assert "secret" not in caught.value.message
    assert "git.invalid" in caught.value.message
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(write_operation(tmp_path / "plain")), commit="abc123")
    assert "not a git repository" in caught.value.message
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(tmp_path / "nothing-here"))
    assert "neither a folder nor a git URL" in caught.value.message
    assert Operation.objects.count() == 0


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_failed_build_records_nothing_and_shows_the_log(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    folder = write_operation(
        tmp_path / "op",
        name=TEST_PREFIX + "broken",
        dockerfile=f"FROM {BASE_IMAGE}\nRUN echo about to fail\nRUN false\n",
    )
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    error = caught.value
    assert (error.code, error.status_code) == ("build_failed", 400)
    assert "failed at 'Step 3/" in error.message
    assert ": RUN false'" in error.message
    assert "returned a non-zero code: 1" in error.message
    assert "about to fail" in error.message  # the log's tail
    assert ": RUN echo about to fail" in error.build_log
    assert error.log_tail in error.message
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_missing_dockerfile(tmp_path: Path) -> None:
    folder = write_operation(tmp_path / "op")
    (folder / "Dockerfile").unlink()
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    assert caught.value.code == "invalid_source"
    assert "has no Dockerfile" in caught.value.message
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_missing_or_ambiguous_spec(tmp_path: Path) -> None:
    folder = write_operation(tmp_path / "op")
    (folder / "operation.json").rename(folder / "spec.json")
    with pytest.raises(IngestionError, match="has no operation spec"):
        ingest_operation(str(folder))
    (folder / "spec.json").rename(folder / "operation.json")
    (folder / "operation.yaml").write_text("name: x\n")
    with pytest.raises(IngestionError, match="keep only one"):
        ingest_operation(str(folder))


@pytest.mark.django_db
def test_invalid_spec_raises_spec_error(tmp_path: Path) -> None:
    spec = {
        "name": "Bad Name",
        "version": "1",
        "command": "run {{ missing }}",
        "inputs": {"n": {"type": "integer", "min": 5, "max": 1}},
    }
    folder = write_operation(tmp_path / "op", spec=spec)
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(folder))
    assert set(caught.value.details) == {"$.name", "$.command", "$.inputs.n.min"}
    assert caught.value.status_code == 400
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_a_wdl_spec_without_its_workflow_is_refused(tmp_path: Path) -> None:
    folder = write_operation(
        tmp_path / "op", spec={"name": TEST_PREFIX + "wf", "version": "1", "mode": "wdl"}
    )
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    assert caught.value.code == "invalid_source"
    assert caught.value.status_code == 400
    assert "main.wdl" in caught.value.message


# --- WebMEV ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webmev_folder_is_converted_and_built(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    folder = tmp_path / "mev-row-count"
    (folder / "docker").mkdir(parents=True)
    spec = {
        "name": f"{TEST_PREFIX}WebMEV row count",
        "description": "Count rows.",
        "inputs": {
            "input_matrix": {
                "description": "A matrix.",
                "name": "Matrix:",
                "required": True,
                "converter": "api.converters.data_resource.LocalDockerSingleDataResourceConverter",
                "spec": {"attribute_type": "DataResource", "resource_type": "MTX", "many": False},
            },
            "skip": {
                "description": "Lines to skip.",
                "name": "Skip:",
                "required": False,
                "converter": "api.converters.basic_attributes.IntegerConverter",
                "spec": {"attribute_type": "NonNegativeInteger", "default": 1},
            },
        },
        "outputs": {
            "rows": {
                "required": True,
                "converter": "api.converters.basic_attributes.IntegerConverter",
                "spec": {"attribute_type": "NonNegativeInteger"},
            }
        },
        "mode": "local_docker",
        "workspace_operation": True,
    }
    (folder / "operation_spec.json").write_text(json.dumps(spec))
    (folder / "entrypoint.txt").write_text('/opt/software/count.sh "{{input_matrix}}" {{skip}}\n')
    (folder / "docker" / "count.sh").write_text(
        '#!/bin/sh\nn=$(tail -n +$(($2 + 1)) "$1" | wc -l)\necho "{\\"rows\\": $n}" > outputs.json\n'
    )
    (folder / "docker" / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY count.sh /opt/software/count.sh\n"
        "RUN chmod 0755 /opt/software/count.sh\n"
    )
    operation, created = ingest_operation(str(folder))
    assert created
    assert operation.name == f"{TEST_PREFIX}webmev-row-count"
    assert operation.version == "0"
    assert operation.spec["command"] == '/opt/software/count.sh "{{input_matrix}}" {{skip}}'
    assert operation.spec["command_style"] == "webmev"
    assert operation.spec["inputs"]["skip"]["min"] == 0
    assert operation.spec["inputs"]["input_matrix"]["webmev"]["resource_type"] == "MTX"

    table = tmp_path / "m.tsv"
    table.write_text("gene\ts1\nA\t1\nB\t2\nC\t3\n")
    argv = render_argv(operation.spec, {"input_matrix": "/inputs/input_matrix/m.tsv"})
    assert argv == ["/opt/software/count.sh", "/inputs/input_matrix/m.tsv", "1"]
    command = shlex.join(argv)  # the sandbox below runs a shell command line
    work = tmp_path / "work"
    run = run_in_sandbox(operation.image, command, work, {table: "/inputs/input_matrix/m.tsv"})
    assert run.returncode == 0, run.stderr
    assert json.loads((work / "outputs.json").read_text()) == {"rows": 3}


@pytest.mark.django_db
def test_webmev_cromwell_folder_is_converted_and_its_spec_checked(tmp_path: Path) -> None:
    """WebMEV Cromwell operations are no longer refused as a whole (see
    tests/e2e/test_webmev_cromwell_mode.py): their spec is converted, by WebMEV's keys."""
    (tmp_path / "operation_spec.json").write_text(
        json.dumps({"name": "wf", "inputs": {"Wf.x": {}}, "outputs": {}, "mode": "cromwell"})
    )
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(tmp_path))
    assert '$.inputs["Wf.x"].spec' in caught.value.details


@pytest.mark.django_db
def test_webmev_nextflow_folder_is_refused_once(tmp_path: Path) -> None:
    # A Nextflow operation: main.nf, no entrypoint.txt, no Dockerfile, keys WebMEV's Nextflow
    # runner takes. One error, no follow-on noise about the missing entrypoint or converters.
    (tmp_path / "main.nf").write_text("workflow {}\n")
    spec: dict[str, Any] = {"name": "nf", "description": "", "inputs": {"x": {"converter": "N"}}}
    spec |= {"outputs": {}, "mode": "nf_batch", "workspace_operation": True}
    (tmp_path / "operation_spec.json").write_text(json.dumps(spec))
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(tmp_path))
    assert caught.value.details == {
        "$.mode": [
            "Nextflow isn't supported (mode 'nf_batch'); Ferry runs local_docker and cromwell"
        ]
    }
    assert Operation.objects.count() == 0


# --- management commands --------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_operation_command(docker_client: docker.DockerClient, tmp_path: Path) -> None:
    folder = write_operation(tmp_path / "op", name=TEST_PREFIX + "cmd")
    out = io.StringIO()
    call_command("ferry_add_operation", str(folder), stdout=out)
    operation = Operation.objects.get(name=TEST_PREFIX + "cmd")
    assert f"Added {operation.name} 1.0.0" in out.getvalue()
    assert operation.image in out.getvalue()

    out = io.StringIO()
    call_command("ferry_add_operation", str(folder), stdout=out)
    assert "was already added" in out.getvalue()
    assert str(operation.id) in out.getvalue()
    assert Operation.objects.count() == 1


@pytest.mark.django_db
def test_add_operation_command_at_a_commit(
    docker_client: docker.DockerClient, two_commit_repo: tuple[Path, str, str]
) -> None:
    repo, first, _second = two_commit_repo
    out = io.StringIO()
    call_command("ferry_add_operation", f"file://{repo}", "--commit", first, stdout=out)
    assert Operation.objects.get().revision == first
    assert f"Checked out commit {first}" in out.getvalue()


@pytest.mark.django_db
def test_add_operation_command_failures(
    docker_client: docker.DockerClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = write_operation(
        tmp_path / "op",
        name=TEST_PREFIX + "cmd-broken",
        dockerfile=f"FROM {BASE_IMAGE}\nRUN echo the-last-words && exit 3\n",
    )
    with pytest.raises(CommandError, match="build_failed") as caught:
        call_command("ferry_add_operation", str(folder), stdout=io.StringIO())
    assert "the-last-words" in str(caught.value)

    # From the command line: a non-zero exit and the log's tail on stderr. (run_from_argv closes
    # the database connections on its way out; the test's transaction needs its connection.)
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        AddOperationCommand().run_from_argv(["manage.py", "ferry_add_operation", str(folder)])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "returned a non-zero code: 3" in err
    assert "the-last-words" in err

    bad = write_operation(
        tmp_path / "bad", spec={"name": "x", "version": "1", "command": "{{ y }}"}
    )
    with pytest.raises(CommandError) as caught:
        call_command("ferry_add_operation", str(bad), stdout=io.StringIO())
    assert "$.command: unknown placeholder {{ y }}" in str(caught.value)
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_load_examples_command_is_idempotent(docker_client: docker.DockerClient) -> None:
    out = io.StringIO()
    call_command("ferry_load_examples", stdout=out)
    names = {folder.name for folder in example_folders()}
    assert {"table-summary", "table-filter"} <= names
    assert set(Operation.objects.values_list("name", flat=True)) == names
    for operation in Operation.objects.filter(mode="docker"):
        docker_client.images.get(operation.image)
    assert Operation.objects.get(name="table-preview").mode == "wdl"
    out = io.StringIO()
    call_command("ferry_load_examples", stdout=out)
    assert out.getvalue().count("already added") == len(names)
    assert "(0 added)" in out.getvalue()
    assert Operation.objects.count() == len(names)


# --- the examples, run for real ------------------------------------------------------------------


@pytest.fixture
def example_ops(docker_client: docker.DockerClient, db: Any) -> dict[str, Operation]:
    return {folder.name: ingest_operation(str(folder))[0] for folder in example_folders()}


TSV = "gene\tcount\tlength\nA\t5\t100\nB\t1\t200\n\nC\tNA\t300\nD\t10.5\t400\r\nE\t2\t500\n"


def test_table_summary_runs_in_the_sandbox(
    example_ops: dict[str, Operation], tmp_path: Path
) -> None:
    operation = example_ops["table-summary"]
    table = tmp_path / "x.tsv"
    table.write_text(TSV)
    command = render_command(operation.spec, {"table": "/inputs/table/x.tsv"})
    assert command == "/opt/op/summarize.sh /inputs/table/x.tsv"
    work = tmp_path / "work"
    run = run_in_sandbox(operation.image, command, work, {table: "/inputs/table/x.tsv"})
    assert run.returncode == 0, run.stderr
    outputs = json.loads((work / "outputs.json").read_text())
    assert outputs == {"summary": "summary.json", "rows": 5}
    summary = json.loads((work / outputs["summary"]).read_text())
    assert summary == {
        "rows": 5,
        "columns": 3,
        "column_names": ["gene", "count", "length"],
        "delimiter": "tab",
        "ragged_rows": 0,
    }
    assert set(operation.spec["outputs"]) == set(outputs)


def test_table_summary_reads_csv_and_fails_on_an_empty_table(
    example_ops: dict[str, Operation], tmp_path: Path
) -> None:
    operation = example_ops["table-summary"]
    table = tmp_path / "x.csv"
    table.write_text('\ufeff"name",value\na,1\nb,2,extra\n')
    run = run_in_sandbox(
        operation.image,
        "/opt/op/summarize.sh /inputs/table/x.csv",
        tmp_path / "w1",
        {table: "/inputs/table/x.csv"},
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "w1" / "summary.json").read_text())
    assert summary["column_names"] == ["name", "value"]
    assert summary["delimiter"] == "comma"
    assert (summary["rows"], summary["ragged_rows"]) == (2, 1)

    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    run = run_in_sandbox(
        operation.image,
        "/opt/op/summarize.sh /inputs/table/e.tsv",
        tmp_path / "w2",
        {empty: "/inputs/table/e.tsv"},
    )
    assert run.returncode == 3
    assert "the table is empty" in run.stderr
    assert not (tmp_path / "w2" / "outputs.json").exists()


def test_table_filter_runs_in_the_sandbox(
    example_ops: dict[str, Operation], tmp_path: Path
) -> None:
    operation = example_ops["table-filter"]
    table = tmp_path / "x.tsv"
    table.write_text(TSV)
    values = {"table": "/inputs/table/x.tsv", "column": "count", "min_value": 2.0}
    command = render_command(operation.spec, values)
    work = tmp_path / "work"
    run = run_in_sandbox(operation.image, command, work, {table: "/inputs/table/x.tsv"})
    assert run.returncode == 0, run.stderr
    outputs = json.loads((work / "outputs.json").read_text())
    assert outputs == {"filtered": "filtered.tsv", "kept": 3}
    assert (work / "filtered.tsv").read_text() == (
        "gene\tcount\tlength\nA\t5\t100\nD\t10.5\t400\nE\t2\t500\n"
    )
    assert "dropped 1 without a number" in run.stdout


def test_table_filter_quoting_csv_and_errors(
    example_ops: dict[str, Operation], tmp_path: Path
) -> None:
    operation = example_ops["table-filter"]
    table = tmp_path / "x.csv"
    table.write_text('id,"it\'s; $(x)",n\n1,"0.5",a\n2,7e-1,b\n3,-1,c\n')
    values = {"table": "/inputs/table/x.csv", "column": "it's; $(x)", "min_value": 0.6}
    work = tmp_path / "w1"
    run = run_in_sandbox(
        operation.image,
        render_command(operation.spec, values),
        work,
        {table: "/inputs/table/x.csv"},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads((work / "outputs.json").read_text()) == {
        "filtered": "filtered.csv",
        "kept": 1,
    }
    assert (work / "filtered.csv").read_text() == 'id,"it\'s; $(x)",n\n2,7e-1,b\n'

    work = tmp_path / "w2"
    values = {**values, "column": "nope"}
    run = run_in_sandbox(
        operation.image,
        render_command(operation.spec, values),
        work,
        {table: "/inputs/table/x.csv"},
    )
    assert run.returncode == 2
    assert 'no column named "nope"; the columns are: id, it\'s; $(x), n' in run.stderr
    assert not (work / "outputs.json").exists()
