"""Adding WDL operations for real: folders with only their WDL, with metadata, with imports, git
repositories; refused workflows with their line:column places, through the API and the
management command. Nothing is built (the tasks name their own images), so no Docker here."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

import wdl
from operations.ingestion import (
    IngestionError,
    ingest_operation,
    operation_bundle_dir,
    wdl_bundle_dir,
    wdl_operation_name,
)
from operations.models import Operation
from operations.spec import SpecError, check_spec

FIXTURES = Path(__file__).parents[1] / "wdl_fixtures"
OPERATIONS = Path(__file__).parents[1] / "wdl_operations"
OPERATIONS_URL = "/api/operations/"


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    """Each test keeps its workflows in its own FERRY_VAR_DIR."""
    folder = tmp_path / "var"
    folder.mkdir()
    settings.FERRY_VAR_DIR = folder
    return folder


def copy_case(tmp_path: Path, case: str, source: Path = FIXTURES) -> Path:
    """A private copy of a fixture folder (tests edit their copies)."""
    return Path(shutil.copytree(source / case, tmp_path / "sources" / case))


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


def stored_files(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- folders --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_folder_with_only_its_workflow(tmp_path: Path, var_dir: Path) -> None:
    folder = copy_case(tmp_path, "optional_defaults")
    messages: list[str] = []
    operation, created = ingest_operation(str(folder), progress=messages.append)

    assert created
    assert operation.mode == "wdl"
    assert operation.image == ""
    assert (operation.name, operation.version) == ("greetings", "1.0.0")
    assert operation.description == "Greets people, a few times over"
    assert operation.source == str(folder)
    spec = operation.spec
    assert spec["workflow"] == "main.wdl"
    assert spec["wdl"] == {
        "workflow_name": "greetings",
        "wdl_version": "1.0",
        "imports": [],
        "files": ["main.wdl"],
    }
    inputs = spec["inputs"]
    assert inputs["extra"]["type"] == "file"
    assert inputs["extra"]["required"] is False
    assert inputs["extra"]["many"] is False
    assert inputs["limit"]["type"] == "integer"
    assert inputs["limit"]["required"] is False
    assert (inputs["repeat"]["default"], inputs["repeat"]["required"]) == (2, False)
    assert inputs["repeat"]["description"] == "How many rounds of greetings"
    assert inputs["names"]["type"] == "list"
    assert inputs["names"]["default"] == ["ada", "grace"]
    assert inputs["punctuation"]["default"] is None  # computed by the workflow
    assert spec["outputs"]["greetings"]["type"] == "file"
    assert spec["outputs"]["lines"]["type"] == "integer"
    assert spec["outputs"]["people_greeted"]["required"] is False
    # The stored spec, without the WDL facts, is a valid normalized spec.
    assert check_spec({k: v for k, v in spec.items() if k != "wdl"}) == {
        k: v for k, v in spec.items() if k != "wdl"
    }

    kept = operation_bundle_dir(operation)
    assert kept == var_dir / "operations" / "greetings" / operation.revision
    assert stored_files(kept) == {"main.wdl": (folder / "main.wdl").read_text()}
    assert wdl.load_workflow(wdl.bundle_from_folder(kept)).workflow_name == "greetings"
    assert len(operation.revision) == 64
    assert "Workflow: greetings (WDL 1.0) in main.wdl" in operation.build_log
    assert "Imports: none" in operation.build_log
    assert "limit (integer, optional)" in operation.build_log
    assert any(m.startswith("Checking main.wdl and its imports with miniwdl") for m in messages)
    assert f"Added greetings 1.0.0 ({operation.id})" in messages


@pytest.mark.django_db
def test_same_folder_twice_is_one_operation(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "optional_defaults")
    first, _ = ingest_operation(str(folder))
    kept = operation_bundle_dir(first)
    stamp = (kept / "main.wdl").stat().st_mtime_ns

    messages: list[str] = []
    again, created = ingest_operation(str(folder), progress=messages.append)
    assert (again.pk, created) == (first.pk, False)
    assert any("is already in the catalog" in m for m in messages)
    assert (kept / "main.wdl").stat().st_mtime_ns == stamp  # not rewritten

    # Files that are not WDL don't belong to the workflow: same revision.
    (folder / "README.md").write_text("Greetings, people.\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("more greetings\n")
    third, created = ingest_operation(str(folder))
    assert (third.pk, created) == (first.pk, False)
    assert Operation.objects.count() == 1


@pytest.mark.django_db
def test_changed_workflow_is_a_new_revision(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "optional_defaults")
    first, _ = ingest_operation(str(folder))
    recorded = (first.revision, first.spec, first.build_log)
    original = (folder / "main.wdl").read_text()
    edited = original.replace('String greeting = "hello"', 'String greeting = "hi"')
    (folder / "main.wdl").write_text(edited)

    second, created = ingest_operation(str(folder))
    assert created
    assert second.pk != first.pk
    assert second.revision != first.revision
    assert second.name == first.name
    assert second.spec["inputs"]["greeting"]["default"] == "hi"
    first.refresh_from_db()
    assert (first.revision, first.spec, first.build_log) == recorded
    # Each revision keeps its own files.
    assert (operation_bundle_dir(first) / "main.wdl").read_text() == original
    assert (operation_bundle_dir(second) / "main.wdl").read_text() == edited


@pytest.mark.django_db
def test_missing_files_are_restored_when_added_again(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "optional_defaults")
    operation, _ = ingest_operation(str(folder))
    kept = operation_bundle_dir(operation)
    shutil.rmtree(kept)
    messages: list[str] = []
    again, created = ingest_operation(str(folder), progress=messages.append)
    assert (again.pk, created) == (operation.pk, False)
    assert stored_files(kept) == {"main.wdl": (folder / "main.wdl").read_text()}
    assert any(m.startswith("Restored its missing workflow files") for m in messages)


@pytest.mark.django_db
def test_metadata_adds_names_descriptions_and_file_types(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "count_lines", OPERATIONS)
    operation, created = ingest_operation(str(folder))
    assert created
    assert (operation.name, operation.version) == ("test-wdl-count-lines", "2.0.1")
    assert operation.description == "Counts the lines of a table and keeps a preview."
    inputs, outputs = operation.spec["inputs"], operation.spec["outputs"]
    assert inputs["table"]["description"] == "The table to count."
    assert inputs["table"]["file_types"] == ["table", "text"]
    assert inputs["table"]["required"]
    assert inputs["preview_lines"]["description"] == "How many lines the preview keeps."
    assert inputs["label"] == {
        "type": "string",
        "pattern": None,
        "description": "",
        "required": False,
        "default": None,
    }
    assert inputs["tags"]["default"] == []
    assert inputs["tags"]["items"]["type"] == "string"
    assert outputs["preview"]["file_type"] == "table"
    assert outputs["parts"]["items"] == {"type": "file", "file_type": "json"}
    assert outputs["lines"]["type"] == "integer"
    assert "Metadata: operation.yaml" in operation.build_log
    # Only the workflow is kept, not its metadata.
    assert operation.spec["wdl"]["files"] == ["main.wdl"]
    assert set(stored_files(operation_bundle_dir(operation))) == {"main.wdl"}

    # The metadata is part of the revision.
    metadata = folder / "operation.yaml"
    metadata.write_text(metadata.read_text().replace("The table to count.", "A table."))
    second, created = ingest_operation(str(folder))
    assert created
    assert second.revision != operation.revision
    assert second.spec["inputs"]["table"]["description"] == "A table."


@pytest.mark.django_db
def test_metadata_that_does_not_fit_the_workflow(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "count_lines", OPERATIONS)
    (folder / "operation.yaml").unlink()
    metadata: dict[str, Any] = {
        "name": "count-lines",
        "mode": "wdl",
        "command": "echo",
        "inputs": {"nope": {"description": "x"}, "preview_lines": {"file_types": ["text"]}},
        "outputs": {"lines": {"file_type": "json"}},
    }
    (folder / "operation.json").write_text(json.dumps(metadata))
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(folder))
    assert set(caught.value.details) == {"$.command"}

    del metadata["command"]
    (folder / "operation.json").write_text(json.dumps(metadata))
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(folder))
    assert caught.value.status_code == 400
    assert set(caught.value.details) == {
        "$.inputs.nope",
        "$.inputs.preview_lines.file_types",
        "$.outputs.lines.file_type",
    }
    assert "the workflow has no input 'nope'" in caught.value.details["$.inputs.nope"][0]

    metadata = {"name": "Count Lines", "version": "1", "workflow": "main.wdl"}
    (folder / "operation.json").write_text(json.dumps(metadata))
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(folder))
    assert set(caught.value.details) == {"$.name"}
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_workflow_with_imports_keeps_every_file(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "imports")
    operation, created = ingest_operation(str(folder))
    assert created
    assert operation.name == "imports"
    assert operation.spec["wdl"]["imports"] == ["tasks/lib.wdl", "tasks/util.wdl"]
    assert operation.spec["inputs"]["table"]["type"] == "file"
    assert operation.spec["inputs"]["keep"]["default"] == 2
    assert "Imports: tasks/lib.wdl, tasks/util.wdl" in operation.build_log
    kept = operation_bundle_dir(operation)
    assert stored_files(kept) == stored_files(folder)
    # The kept folder is a complete bundle: it loads, imports included.
    loaded = wdl.load_workflow(wdl.bundle_from_folder(kept))
    assert loaded.imported_files == ("tasks/lib.wdl", "tasks/util.wdl")
    assert wdl.dependencies_zip(wdl.bundle_from_folder(kept)) is not None


@pytest.mark.django_db
def test_main_file_naming(tmp_path: Path) -> None:
    source = (FIXTURES / "optional_defaults" / "main.wdl").read_text()
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "hello_World.wdl").write_text(source.replace("workflow greetings", "workflow Hi_You"))
    operation, _ = ingest_operation(str(folder))
    assert operation.spec["workflow"] == "hello_World.wdl"
    assert operation.name == "hi-you"

    two = tmp_path / "two"
    shutil.copytree(folder, two)
    (two / "other.wdl").write_text(source)
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(two))
    assert caught.value.code == "invalid_source"
    assert "hello_World.wdl, other.wdl" in caught.value.message
    assert '"workflow"' in caught.value.details["workflow"][0]

    (two / "operation.json").write_text(json.dumps({"mode": "wdl", "workflow": "other.wdl"}))
    chosen, _ = ingest_operation(str(two))
    assert chosen.spec["workflow"] == "other.wdl"
    assert chosen.name == "greetings"
    assert chosen.spec["wdl"]["files"] == ["hello_World.wdl", "other.wdl"]

    (two / "operation.json").write_text(json.dumps({"workflow": "../one/hello_World.wdl"}))
    with pytest.raises(SpecError) as spec_error:
        ingest_operation(str(two))
    assert set(spec_error.value.details) == {"$.workflow"}


def test_names_and_versions_from_the_workflow() -> None:
    assert wdl_operation_name("Count_Rows") == "count-rows"
    assert wdl_operation_name("wf__2") == "wf-2"


@pytest.mark.django_db
def test_version_from_the_workflows_meta(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "count_lines", OPERATIONS)
    (folder / "operation.yaml").unlink()
    operation, _ = ingest_operation(str(folder))
    assert (operation.name, operation.version) == ("count-lines", "0.9")
    assert operation.description == "Counts a table's lines"

    main = folder / "main.wdl"
    main.write_text(main.read_text().replace('version: "0.9"', 'version: "not valid!"'))
    with pytest.raises(SpecError) as caught:
        ingest_operation(str(folder))
    assert "meta version 'not valid!'" in caught.value.details["$.version"][0]


@pytest.mark.django_db
def test_mode_detection(tmp_path: Path) -> None:
    # A spec without mode or command, no Dockerfile, and WDL: a WDL operation.
    folder = copy_case(tmp_path, "optional_defaults")
    (folder / "operation.json").write_text(json.dumps({"name": "hello-people", "version": "3"}))
    operation, _ = ingest_operation(str(folder))
    assert (operation.mode, operation.name, operation.version) == ("wdl", "hello-people", "3")

    # "mode": "wdl" without any WDL: told what is missing.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "operation.json").write_text(json.dumps({"name": "x", "mode": "wdl"}))
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(empty))
    assert caught.value.code == "invalid_source"
    assert f"{empty} has no main.wdl" in caught.value.message

    # A Dockerfile beside the WDL, without a spec: a docker operation lacking its spec.
    (folder / "operation.json").unlink()
    (folder / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(IngestionError, match="has no operation spec"):
        ingest_operation(str(folder))


@pytest.mark.django_db
def test_git_repository_revision_is_the_commit(tmp_path: Path) -> None:
    repo = copy_case(tmp_path, "imports")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "imports workflow")
    sha = git(repo, "rev-parse", "HEAD")
    operation, created = ingest_operation(f"file://{repo}")
    assert created
    assert operation.revision == sha
    assert "(git commit)" in operation.build_log
    assert stored_files(wdl_bundle_dir("imports", sha)) == stored_files(FIXTURES / "imports")


# --- refused workflows ----------------------------------------------------------------------------


def places(details: dict[str, list[str]]) -> list[str]:
    """``main.wdl:6:3`` of every problem listed under ``workflow``."""
    return [":".join(problem.split(":")[:3]) for problem in details["workflow"]]


@pytest.mark.django_db
def test_syntax_error_is_refused_with_its_place(tmp_path: Path, var_dir: Path) -> None:
    folder = copy_case(tmp_path, "syntax_error")
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    error = caught.value
    assert (error.code, error.status_code) == ("invalid_workflow", 400)
    assert error.message.startswith("the workflow is invalid: main.wdl:6:3: syntax error")
    assert places(error.details) == ["main.wdl:6:3"]
    assert Operation.objects.count() == 0
    assert not any(var_dir.iterdir())  # nothing kept


@pytest.mark.django_db
def test_type_errors_are_all_listed(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "type_error")
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    assert places(caught.value.details) == ["main.wdl:5:17", "main.wdl:6:20", "main.wdl:12:19"]
    assert caught.value.message.endswith("(and 2 more)")


@pytest.mark.django_db
def test_errors_in_imported_files_and_unsupported_types(tmp_path: Path) -> None:
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(copy_case(tmp_path, "import_broken")))
    assert places(caught.value.details) == ["tasks/lib.wdl:7:17"]
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(copy_case(tmp_path, "unsupported_types")))
    assert caught.value.code == "invalid_workflow"
    assert all(problem.startswith("main.wdl:") for problem in caught.value.details["workflow"])
    # Its Map, Pair, Array[Array[File]] and struct inputs are taken now (structured inputs),
    # and its maps keyed by Int; its input and output of maps keyed by File are not.
    assert len(caught.value.details["workflow"]) == 2


@pytest.mark.django_db
def test_import_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    # The imported file exists beside the folder, but it is not part of the operation.
    folder = copy_case(tmp_path, "import_escape")
    copy_case(tmp_path, "scatter")
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(folder))
    assert places(caught.value.details) == ["main.wdl:3:1"]
    assert "outside the bundle" in caught.value.details["workflow"][0]
    assert Operation.objects.count() == 0


# --- through the API ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_add_wdl_operations_through_the_api(
    tmp_path: Path, client_for: Callable[[str], APIClient]
) -> None:
    folder = copy_case(tmp_path, "imports")
    staff = client_for("staff")
    assert client_for("owner").post(OPERATIONS_URL, {"source": str(folder)}).status_code == 403

    answer = staff.post(OPERATIONS_URL, {"source": str(folder)}, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["name"], body["mode"], body["image"]) == ("imports", "wdl", "")
    assert body["spec"]["inputs"]["table"]["type"] == "file"
    assert body["spec"]["wdl"]["imports"] == ["tasks/lib.wdl", "tasks/util.wdl"]
    assert "Workflow: imports (WDL 1.0)" in body["build_log"]
    assert (operation_bundle_dir(Operation.objects.get()) / "tasks" / "util.wdl").is_file()

    again = staff.post(OPERATIONS_URL, {"source": str(folder)}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]

    metadata = copy_case(tmp_path, "count_lines", OPERATIONS)
    answer = staff.post(OPERATIONS_URL, {"source": str(metadata)}, format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["spec"]["inputs"]["table"]["file_types"] == ["table", "text"]

    listed = client_for("owner").get(OPERATIONS_URL).json()["results"]
    assert {op["name"] for op in listed} == {"imports", "test-wdl-count-lines"}


@pytest.mark.django_db
def test_api_answers_refused_workflows_with_their_places(
    tmp_path: Path, client_for: Callable[[str], APIClient]
) -> None:
    staff = client_for("staff")
    answer = staff.post(
        OPERATIONS_URL, {"source": str(copy_case(tmp_path, "syntax_error"))}, format="json"
    )
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "invalid_workflow"
    assert "main.wdl:6:3: syntax error: unexpected '}'" in body["message"]
    assert body["details"]["workflow"][0].startswith("main.wdl:6:3: syntax error")

    answer = staff.post(
        OPERATIONS_URL, {"source": str(copy_case(tmp_path, "type_error"))}, format="json"
    )
    assert answer.status_code == 400
    assert places(answer.json()["details"]) == ["main.wdl:5:17", "main.wdl:6:20", "main.wdl:12:19"]

    folder = copy_case(tmp_path, "import_escape")
    copy_case(tmp_path, "scatter")
    answer = staff.post(OPERATIONS_URL, {"source": str(folder)}, format="json")
    assert answer.status_code == 400
    assert places(answer.json()["details"]) == ["main.wdl:3:1"]

    bad_metadata = copy_case(tmp_path, "count_lines", OPERATIONS)
    (bad_metadata / "operation.yaml").write_text("inputs:\n  nope: {description: x}\n")
    answer = staff.post(OPERATIONS_URL, {"source": str(bad_metadata)}, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_spec"
    assert "$.inputs.nope" in answer.json()["details"]
    assert Operation.objects.count() == 0


# --- the management command -----------------------------------------------------------------------


@pytest.mark.django_db
def test_add_operation_command_on_a_wdl_folder(tmp_path: Path) -> None:
    folder = copy_case(tmp_path, "imports")
    out = io.StringIO()
    call_command("ferry_add_operation", str(folder), stdout=out)
    operation = Operation.objects.get()
    printed = out.getvalue()
    assert f"Reading {folder}" in printed
    assert "Checking main.wdl and its imports with miniwdl" in printed
    assert "Workflow imports (WDL 1.0): 2 imported files, 2 inputs, 2 outputs" in printed
    assert f"Kept the workflow's files in {operation_bundle_dir(operation)}" in printed
    assert f"Added imports 1.0.0 (revision {operation.revision[:12]})" in printed
    assert f"as a WDL workflow (main.wdl) — id {operation.id}" in printed

    out = io.StringIO()
    call_command("ferry_add_operation", str(folder), stdout=out)
    assert "was already added" in out.getvalue()
    assert str(operation.id) in out.getvalue()

    with pytest.raises(CommandError) as caught:
        call_command(
            "ferry_add_operation", str(copy_case(tmp_path, "type_error")), stdout=io.StringIO()
        )
    message = str(caught.value)
    assert message.startswith("[invalid_workflow] the workflow is invalid: main.wdl:5:17")
    for place in ("main.wdl:5:17", "main.wdl:6:20", "main.wdl:12:19"):
        assert f"\n  {place}: " in message
    assert Operation.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "name", "wdl_version"),
    [
        ("scatter", "scatter-squares", "1.0"),
        ("array_file_input", "count-lines", "1.0"),
        ("failing_task", "failing-task", "1.0"),
        ("draft2", "draft2-greeting", "draft-2"),
        ("wdl11", "join-words", "1.1"),
    ],
)
def test_every_runnable_fixture_is_added(
    tmp_path: Path, case: str, name: str, wdl_version: str
) -> None:
    operation, created = ingest_operation(str(copy_case(tmp_path, case)))
    assert created
    assert operation.name == name
    assert operation.spec["wdl"]["wdl_version"] == wdl_version
    assert (operation_bundle_dir(operation) / "main.wdl").is_file()
