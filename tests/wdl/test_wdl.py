"""The wdl package on real WDL documents (tests/wdl_fixtures), with miniwdl: no Docker needed."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import WDL

import wdl
from operations.spec import FILE_TYPES, check_spec
from wdl.signature import output_type

FIXTURES = Path(__file__).parents[1] / "wdl_fixtures"
RUNNABLE = {
    "scatter": ("scatter_squares", "1.0"),
    "array_file_input": ("count_lines", "1.0"),
    "optional_defaults": ("greetings", "1.0"),
    "failing_task": ("failing_task", "1.0"),
    "imports": ("imports", "1.0"),
    "draft2": ("draft2_greeting", "draft-2"),
    "wdl11": ("join_words", "1.1"),
}
ALL_FILE_TYPES = ["table", "json", "text", "binary"]


def load(case: str) -> wdl.LoadedWorkflow:
    return wdl.load_workflow(wdl.bundle_from_folder(FIXTURES / case))


def signature(case: str) -> dict[str, Any]:
    return wdl.derive_signature(load(case))


def errors_of(case_or_bundle: str | wdl.Bundle) -> list[wdl.WdlError]:
    bundle = (
        wdl.bundle_from_folder(FIXTURES / case_or_bundle)
        if isinstance(case_or_bundle, str)
        else case_or_bundle
    )
    with pytest.raises(wdl.WorkflowInvalid) as caught:
        wdl.derive_signature(wdl.load_workflow(bundle))
    return caught.value.errors


def places(errors: list[wdl.WdlError]) -> list[tuple[str, int, int]]:
    return [(e["file"], e["line"], e["column"]) for e in errors]


def zip_of(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def test_the_package_does_not_import_django() -> None:
    modules = "wdl, wdl.bundle, wdl.dependencies, wdl.errors, wdl.inputs, wdl.loading"
    modules += ", wdl.outputs, wdl.signature, wdl.call_inputs, wdl.input_shapes"
    code = f"import sys, {modules}; assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_file_types_match_the_operation_spec() -> None:
    assert list(FILE_TYPES) == ALL_FILE_TYPES == list(wdl.signature.FILE_TYPES)


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(RUNNABLE))
def test_runnable_fixtures_load(case: str) -> None:
    loaded = load(case)
    assert (loaded.workflow_name, loaded.wdl_version) == RUNNABLE[case]
    found = signature(case)
    assert (found["workflow_name"], found["wdl_version"]) == RUNNABLE[case]


@pytest.mark.parametrize("case", sorted(RUNNABLE))
def test_signatures_are_valid_ferry_specs(case: str) -> None:
    found = signature(case)
    spec = {
        "name": case.replace("_", "-"),
        "version": "1.0.0",
        "mode": "wdl",
        "inputs": found["inputs"],
        "outputs": found["outputs"],
    }
    checked = check_spec(spec)
    assert checked["inputs"] == found["inputs"]
    assert checked["outputs"] == found["outputs"]


def test_syntax_error_has_its_place() -> None:
    errors = errors_of("syntax_error")
    assert places(errors) == [("main.wdl", 6, 3)]
    assert errors[0]["message"].startswith("syntax error: unexpected '}'; expected ")
    with pytest.raises(wdl.WorkflowInvalid, match=r"^main\.wdl:6:3: syntax error"):
        load("syntax_error")


def test_type_errors_are_all_reported() -> None:
    with pytest.raises(wdl.WorkflowInvalid) as caught:
        load("type_error")
    errors = caught.value.errors
    assert places(errors) == [("main.wdl", 5, 17), ("main.wdl", 6, 20), ("main.wdl", 12, 19)]
    assert errors[0]["message"] == "Expected Int instead of Boolean"
    assert "undefined_name" in errors[1]["message"]
    assert str(caught.value) == "main.wdl:5:17: Expected Int instead of Boolean (and 2 more)"
    assert caught.value.describe().count("\n") == 2


def test_a_literal_default_that_does_not_fit_its_type_is_an_error() -> None:
    # miniwdl lets a String into an Int statically; the run would fail, so Ferry refuses it.
    source = 'version 1.0\nworkflow w {\n  input {\n    Int count = "three"\n  }\n}\n'
    errors = errors_of(wdl.bundle_from_text(source))
    assert places(errors) == [("main.wdl", 4, 17)]
    assert errors[0]["message"].startswith("input count: the default value is not a valid Int")


def test_a_document_of_one_task_and_no_workflow_is_its_task() -> None:
    # Refused once ("no workflow"): both engines run a lone task, named like a workflow.
    loaded = load("no_workflow")
    assert loaded.is_task
    assert loaded.workflow_name == "lonely"
    signature = wdl.derive_signature(loaded)
    assert signature["inputs"] == {}
    assert signature["outputs"] == {"said": {"type": "string", "description": "", "required": True}}


def test_imports_from_a_folder() -> None:
    loaded = load("imports")
    assert loaded.imported_files == ("tasks/lib.wdl", "tasks/util.wdl")
    assert set(signature("imports")["inputs"]) == {"table", "keep"}


@pytest.mark.parametrize("prefix", ["", "imports-main/"])
def test_imports_from_a_zip(prefix: str, tmp_path: Path) -> None:
    archive = zip_of(FIXTURES / "imports", prefix)
    from_bytes = wdl.bundle_from_zip(archive)
    (tmp_path / "bundle.zip").write_bytes(archive)
    from_path = wdl.open_bundle(tmp_path / "bundle.zip")
    folder = wdl.bundle_from_folder(FIXTURES / "imports")
    for bundle in (from_bytes, from_path):
        assert bundle.files == folder.files
        loaded = wdl.load_workflow(bundle)
        assert loaded.imported_files == ("tasks/lib.wdl", "tasks/util.wdl")
        assert wdl.derive_signature(loaded) == signature("imports")
        assert wdl.bundle_digest(bundle) == wdl.bundle_digest(folder)


def test_a_zip_without_the_main_file_or_with_unsafe_names_is_refused() -> None:
    with pytest.raises(wdl.WorkflowInvalid, match=r"has no main\.wdl"):
        wdl.bundle_from_zip(zip_of(FIXTURES / "imports" / "tasks"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.wdl", "version 1.0\nworkflow w {}\n")
        archive.writestr("../evil.wdl", "version 1.0\n")
    with pytest.raises(wdl.WorkflowInvalid, match="unsafe entry name"):
        wdl.bundle_from_zip(buffer.getvalue())
    with pytest.raises(wdl.WorkflowInvalid, match="not a zip archive"):
        wdl.bundle_from_zip(b"not a zip")


def test_an_import_above_the_root_is_refused_even_when_the_file_exists() -> None:
    assert (FIXTURES / "scatter" / "main.wdl").is_file()
    errors = errors_of("import_escape")
    assert places(errors) == [("main.wdl", 3, 1)]
    assert "leads outside the bundle" in errors[0]["message"]


def test_url_imports_are_refused() -> None:
    errors = errors_of("import_url")
    assert places(errors) == [("main.wdl", 3, 1)]
    assert "not URLs" in errors[0]["message"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/etc/hosts", "relative to the importing file"),
        ("file:///etc/hosts", "not URLs"),
        ("tasks/../../x.wdl", "leads outside the bundle"),
        ("missing.wdl", "missing.wdl is not in the bundle"),
    ],
)
def test_bad_imports_are_refused(target: str, reason: str) -> None:
    source = f'version 1.0\n\nimport "{target}" as lib\n\nworkflow w {{}}\n'
    errors = errors_of(wdl.bundle_from_text(source))
    assert places(errors) == [("main.wdl", 3, 1)]
    assert reason in errors[0]["message"]


def test_an_error_inside_an_imported_file_names_that_file() -> None:
    errors = errors_of("import_broken")
    assert places(errors) == [("tasks/lib.wdl", 7, 17)]
    assert errors[0]["message"].startswith("Expected Int instead of Float")


def test_a_single_file_bundle_holds_only_that_file() -> None:
    single = wdl.open_bundle(FIXTURES / "scatter" / "main.wdl")
    assert list(single.files) == ["main.wdl"]
    assert wdl.load_workflow(single).workflow_name == "scatter_squares"
    errors = errors_of(wdl.bundle_from_file(FIXTURES / "imports" / "main.wdl"))
    assert "tasks/lib.wdl is not in the bundle" in errors[0]["message"]


def test_a_folder_bundle_skips_hidden_files_and_takes_another_main(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    shutil.copytree(FIXTURES / "imports", folder / "workflows")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    bundle = wdl.bundle_from_folder(folder, main="workflows/main.wdl")
    assert sorted(bundle.files) == [
        "workflows/main.wdl",
        "workflows/tasks/lib.wdl",
        "workflows/tasks/util.wdl",
    ]
    assert wdl.load_workflow(bundle).imported_files == (
        "workflows/tasks/lib.wdl",
        "workflows/tasks/util.wdl",
    )
    with pytest.raises(wdl.WorkflowInvalid, match=r"has no main\.wdl"):
        wdl.bundle_from_folder(folder)


def test_loading_works_inside_a_running_event_loop() -> None:
    async def load_in_loop() -> str:
        return load("scatter").workflow_name

    assert asyncio.run(load_in_loop()) == "scatter_squares"


def test_a_written_bundle_loads_with_plain_miniwdl(tmp_path: Path) -> None:
    main = wdl.write_bundle(wdl.bundle_from_zip(zip_of(FIXTURES / "imports")), tmp_path / "b")
    workflow = WDL.load(str(main)).workflow
    assert workflow is not None
    assert workflow.name == "imports"


# --- signature --------------------------------------------------------------------------------


def test_scatter_signature() -> None:
    found = signature("scatter")
    assert found["inputs"] == {
        "count": {
            "type": "integer",
            "min": None,
            "max": None,
            "description": "",
            "required": False,
            "default": 3,
        }
    }
    assert found["outputs"] == {
        "squares": {
            "type": "list",
            "items": {"type": "integer"},
            "description": "",
            "required": True,
        },
        "notes": {
            "type": "list",
            "items": {"type": "file", "file_type": "binary"},
            "description": "",
            "required": True,
        },
        "total": {"type": "integer", "description": "", "required": True},
    }


def test_array_of_files_is_a_file_input_taking_many() -> None:
    inputs = signature("array_file_input")["inputs"]
    assert inputs["tables"] == {
        "type": "file",
        "file_types": ALL_FILE_TYPES,
        "many": True,
        "description": "",
        "required": True,
        "default": None,
    }
    assert inputs["label"]["default"] == "lines"


def test_optional_inputs_and_defaults() -> None:
    found = signature("optional_defaults")
    inputs = found["inputs"]
    assert found["description"] == "Greets people, a few times over"
    summary = {name: (spec["required"], spec["default"]) for name, spec in inputs.items()}
    assert summary == {
        "greeting": (False, "hello"),
        "repeat": (False, 2),
        "ratio": (False, 1.0),
        "shout": (False, False),
        "names": (False, ["ada", "grace"]),
        "limit": (False, None),
        "extra": (False, None),
        "punctuation": (False, None),  # an expression: the workflow computes it
        "people": (False, None),
    }
    assert isinstance(inputs["ratio"]["default"], float)
    assert inputs["greeting"]["description"] == "What to say"
    assert inputs["repeat"]["description"] == "How many rounds of greetings"
    assert inputs["names"]["items"] == {"type": "string", "pattern": None}
    assert inputs["extra"]["type"] == "file"
    assert found["outputs"]["people_greeted"] == {
        "type": "integer",
        "description": "",
        "required": False,
    }


def test_draft2_inputs_are_the_settable_declarations() -> None:
    inputs = signature("draft2")["inputs"]
    assert {name: (s["type"], s["required"], s["default"]) for name, s in inputs.items()} == {
        "name": ("string", True, None),
        "times": ("integer", False, 2),
        "suffix": ("string", False, None),
    }  # banner is computed from name, so it is not an input


def test_unsupported_types_are_reported_where_declared() -> None:
    # Its Map[String, Int], Pair, Array[Array[File]] and struct inputs were refused once, and
    # its Map[Int, String] outputs; they keep their structure now (wdl/input_shapes.py, maps
    # keyed by any scalar). Maps keyed by File are refused, as input and as output.
    errors = errors_of("unsupported_types")
    assert places(errors) == [("main.wdl", 14, 5), ("main.wdl", 29, 5)]
    assert errors[0]["message"].startswith(
        "input weights: type Map[File,Int] is not supported as an operation input"
    )
    assert errors[1]["message"].startswith(
        "output weights_out: type Map[File,Int] is not supported as an operation output; "
        "a Map's keys must be String, Int, Float or Boolean, not File ("
    )
    # Array[Array[File]] outputs keep their structure (they were flattened once).
    nested = WDL.Type.Array(WDL.Type.Array(WDL.Type.File()))
    assert output_type(nested) == {
        "type": "list",
        "items": {"type": "list", "items": {"type": "file", "file_type": "binary"}},
    }


def test_a_call_input_left_unset_is_a_nested_operation_input() -> None:
    # Refused once ("call needs_two leaves its required input second unset"): the engines take
    # it as wf.needs_two.second, so the operation does too.
    derived = signature("unset_call_input")
    assert derived["inputs"]["needs_two__second"]["required"] is True
    assert derived["inputs"]["needs_two__second"]["type"] == "integer"
    assert derived["engine_names"] == {"needs_two__second": "needs_two.second"}


def test_metadata_sets_descriptions_and_file_types() -> None:
    merged = wdl.merge_metadata(
        signature("scatter"),
        {
            "description": "Squares numbers",
            "inputs": {"count": {"description": "How many numbers"}},
            "outputs": {
                "notes": {"file_type": "text", "description": "One note per number"},
                "total": {"description": "The sum"},
            },
        },
    )
    assert merged["description"] == "Squares numbers"
    assert merged["inputs"]["count"]["description"] == "How many numbers"
    assert merged["outputs"]["notes"]["items"] == {"type": "file", "file_type": "text"}
    assert merged["outputs"]["notes"]["description"] == "One note per number"
    assert merged["outputs"]["total"]["description"] == "The sum"
    assert signature("scatter")["outputs"]["notes"]["items"]["file_type"] == "binary"

    tables = wdl.workflow_signature(
        load("array_file_input"),
        {"inputs": {"tables": {"file_types": ["text", "table"]}}},
    )
    assert tables["inputs"]["tables"]["file_types"] == ["table", "text"]


def test_metadata_naming_unknown_things_is_refused() -> None:
    with pytest.raises(wdl.MetadataInvalid) as caught:
        wdl.merge_metadata(
            signature("scatter"),
            {
                "inputs": {
                    "counts": {"description": "typo"},
                    "count": {"file_types": ["text"], "colour": "red"},
                },
                "outputs": {"notes": {"file_type": "image"}, "total": {"file_type": "json"}},
                "author": "someone",
            },
        )
    paths = sorted(e["path"] for e in caught.value.errors)
    assert paths == [
        "$.author",
        "$.inputs.count.colour",
        "$.inputs.count.file_types",
        "$.inputs.counts",
        "$.outputs.notes.file_type",
        "$.outputs.total.file_type",
    ]
    by_path = {e["path"]: e["message"] for e in caught.value.errors}
    assert by_path["$.inputs.counts"] == "the workflow has no input 'counts' (its inputs: count)"


# --- inputs JSON ------------------------------------------------------------------------------


def test_build_inputs_maps_files_and_leaves_out_what_is_not_given() -> None:
    def location(ref: str) -> str:
        return f"s3://bucket/{ref}"

    loaded = load("optional_defaults")
    values = {"greeting": "hi", "ratio": 2, "names": ["x"], "extra": "file-1", "limit": None}
    built = wdl.build_inputs("greetings", loaded, values, location)
    assert built == {
        "greetings.greeting": "hi",
        "greetings.ratio": 2.0,
        "greetings.names": ["x"],
        "greetings.extra": "s3://bucket/file-1",
    }
    assert isinstance(built["greetings.ratio"], float)

    tables = wdl.build_inputs(
        "count_lines", signature("array_file_input"), {"tables": ["a", "b"]}, location
    )
    assert tables == {"count_lines.tables": ["s3://bucket/a", "s3://bucket/b"]}


def test_build_inputs_refuses_unknown_and_missing_inputs() -> None:
    found = signature("array_file_input")
    with pytest.raises(ValueError, match="unknown inputs for workflow count_lines: colour"):
        wdl.build_inputs("count_lines", found, {"tables": ["a"], "colour": "red"}, str)
    with pytest.raises(ValueError, match="input tables of workflow count_lines is required"):
        wdl.build_inputs("count_lines", found, {"label": "x"}, str)


# --- packaging --------------------------------------------------------------------------------


def test_dependencies_zip_holds_the_imports_and_is_reproducible(tmp_path: Path) -> None:
    assert wdl.dependencies_zip(wdl.bundle_from_folder(FIXTURES / "scatter")) is None
    packed = wdl.dependencies_zip(wdl.bundle_from_folder(FIXTURES / "imports"))
    assert packed is not None
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert archive.namelist() == ["tasks/lib.wdl", "tasks/util.wdl"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("tasks/lib.wdl") == (FIXTURES / "imports/tasks/lib.wdl").read_bytes()
    copy = tmp_path / "copy"
    shutil.copytree(FIXTURES / "imports", copy)
    again = wdl.dependencies_zip(wdl.load_workflow(wdl.bundle_from_folder(copy)))
    assert again == packed
    assert wdl.dependencies_zip(wdl.bundle_from_zip(zip_of(FIXTURES / "imports"))) == packed


def test_dependencies_zip_is_relative_to_the_main_file_folder() -> None:
    main = 'version 1.0\nimport "{}" as lib\nworkflow w {{\n  call lib.t\n}}\n'
    task = "version 1.0\ntask t {\n  command <<<\n    echo hi\n  >>>\n}\n"
    inside = wdl.Bundle(
        files={"wf/main.wdl": main.format("lib.wdl").encode(), "wf/lib.wdl": task.encode()},
        main="wf/main.wdl",
    )
    packed = wdl.dependencies_zip(inside)
    assert packed is not None
    assert zipfile.ZipFile(io.BytesIO(packed)).namelist() == ["lib.wdl"]
    above = wdl.Bundle(
        files={"wf/main.wdl": main.format("../lib.wdl").encode(), "lib.wdl": task.encode()},
        main="wf/main.wdl",
    )
    assert wdl.load_workflow(above).imported_files == ("lib.wdl",)
    with pytest.raises(wdl.WorkflowInvalid, match="Cromwell can't resolve"):
        wdl.dependencies_zip(above)


def test_bundle_digest_follows_the_files(tmp_path: Path) -> None:
    copy = tmp_path / "imports"
    shutil.copytree(FIXTURES / "imports", copy)
    first = wdl.bundle_digest(wdl.bundle_from_folder(copy))
    assert len(first) == 64
    assert wdl.bundle_digest(wdl.bundle_from_folder(FIXTURES / "imports")) == first
    (copy / ".hidden").write_text("ignored")
    assert wdl.bundle_digest(wdl.bundle_from_folder(copy)) == first
    with (copy / "tasks" / "util.wdl").open("a") as util:
        util.write("\n")
    assert wdl.bundle_digest(wdl.bundle_from_folder(copy)) != first


# --- outputs ----------------------------------------------------------------------------------


def test_flatten_output_files_by_wdl_type() -> None:
    files, array = WDL.Type.File(), WDL.Type.Array
    assert wdl.flatten_output_files("/o/a.txt", files) == ["/o/a.txt"]
    assert wdl.flatten_output_files(None, WDL.Type.File(optional=True)) == []
    assert wdl.flatten_output_files([["a", "b"], [], ["c"]], array(array(files))) == [
        "a",
        "b",
        "c",
    ]
    assert wdl.flatten_output_files(["a", None], array(WDL.Type.File(optional=True))) == ["a"]
    pair = WDL.Type.Pair(WDL.Type.Int(), files)
    assert wdl.flatten_output_files({"left": 1, "right": "r"}, pair) == ["r"]
    mapping = WDL.Type.Map((WDL.Type.String(), files))
    assert wdl.flatten_output_files({"k": "v"}, mapping) == ["v"]
    assert wdl.flatten_output_files(3, WDL.Type.Int()) == []


def test_flatten_output_files_of_a_struct() -> None:
    source = """version 1.1
struct Result {
  String name
  File report
}
workflow w {
  output {
    Result result = Result { name: "x", report: "r.txt" }
  }
}
"""
    loaded = wdl.load_workflow(wdl.bundle_from_text(source))
    assert loaded.workflow.outputs is not None
    result_type = loaded.workflow.outputs[0].type
    value = {"name": "x", "report": "/out/r.txt"}
    assert wdl.flatten_output_files(value, result_type) == ["/out/r.txt"]


def test_split_outputs_sorts_files_from_values() -> None:
    found = signature("scatter")
    outputs = {
        "scatter_squares.squares": [0, 1, 4],
        "scatter_squares.notes": ["/run/a", "/run/b", "/run/c"],
        "scatter_squares.total": 5,
    }
    split = wdl.split_outputs(found, outputs)
    assert split.files == {"notes": ["/run/a", "/run/b", "/run/c"]}
    assert split.values == {"squares": [0, 1, 4], "total": 5}
    with pytest.raises(wdl.OutputsIncomplete) as caught:
        wdl.split_outputs(found, {"scatter_squares.total": 5})
    assert caught.value.missing == ["squares", "notes"]

    greetings = signature("optional_defaults")
    split = wdl.split_outputs(
        greetings,
        {"greetings": "/run/greetings.txt", "lines": 4, "ratio_used": 1.0},
    )
    assert split.files == {"greetings": ["/run/greetings.txt"]}
    assert split.values == {"lines": 4, "ratio_used": 1.0, "people_greeted": None}
