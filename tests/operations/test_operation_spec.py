"""Ferry's operation spec: parsing, every problem reported by its JSON path, WebMEV conversion,
and the command template's shell quoting (checked by running the rendered command in sh)."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.exceptions import ApplicationError
from operations.spec import SpecError, parse_spec, render_argv, render_command
from operations.webmev import convert_webmev, operation_slug

VALID: dict[str, Any] = {
    "name": "table-summary",
    "version": "1.0.0",
    "description": "Summarize a table.",
    "mode": "docker",
    "command": "summarize {{ table }} {{ min_rows }}",
    "resources": {"memory_mb": 256, "cpus": 1.0, "pids": 128, "timeout_s": 600},
    "inputs": {
        "table": {
            "type": "file",
            "file_types": ["table"],
            "many": False,
            "required": True,
            "description": "The table.",
        },
        "min_rows": {
            "type": "integer",
            "min": 0,
            "max": 100,
            "default": 1,
            "required": False,
            "description": "Fewest rows.",
        },
        "ratio": {"type": "float", "min": 0.0, "max": 1.0},
        "label": {"type": "string", "pattern": "^[a-z]+$"},
        "flag": {"type": "boolean"},
        "method": {"type": "option", "choices": ["mean", "median"]},
        "names": {"type": "list", "items": {"type": "string"}},
    },
    "outputs": {
        "summary": {"type": "file", "file_type": "json", "description": "Counts."},
        "rows": {"type": "integer"},
    },
}


def spec_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = copy.deepcopy(VALID)
    change(raw)
    return raw


def errors_of(raw: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, **kwargs)
    return caught.value.details


# --- valid specs ---------------------------------------------------------------------------------


def test_valid_spec_is_normalized_with_every_default_filled_in() -> None:
    spec = parse_spec(json.dumps(VALID).encode())
    assert spec["name"] == "table-summary"
    assert spec["mode"] == "docker"
    assert spec["resources"] == {"memory_mb": 256, "cpus": 1.0, "pids": 128, "timeout_s": 600}
    inputs = spec["inputs"]
    assert inputs["table"] == {
        "type": "file",
        "file_types": ["table"],
        "many": False,
        "description": "The table.",
        "required": True,
        "default": None,
    }
    assert inputs["min_rows"]["default"] == 1
    assert inputs["min_rows"]["required"] is False
    assert inputs["ratio"] == {
        "type": "float",
        "min": 0.0,
        "max": 1.0,
        "description": "",
        "required": True,
        "default": None,
    }
    assert inputs["label"]["pattern"] == "^[a-z]+$"
    assert inputs["method"]["choices"] == ["mean", "median"]
    assert inputs["names"]["items"] == {"type": "string", "pattern": None}
    assert spec["outputs"]["summary"] == {
        "type": "file",
        "file_type": "json",
        "description": "Counts.",
        "required": True,
    }
    assert spec["outputs"]["rows"] == {"type": "integer", "description": "", "required": True}
    # The normalized form is stable: parsing it again gives it back.
    assert parse_spec(spec) == spec


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec(
        {
            "name": "x",
            "version": "1",
            "command": "run {{ f }} {{ n }}",
            "inputs": {"f": {"type": "file"}, "n": {"type": "float", "default": 2}},
        }
    )
    assert spec["mode"] == "docker"
    assert spec["description"] == ""
    assert spec["resources"] == {}
    assert spec["outputs"] == {}
    assert spec["inputs"]["f"]["file_types"] == ["table", "json", "text", "binary"]
    assert spec["inputs"]["f"]["many"] is False
    assert spec["inputs"]["n"]["default"] == 2.0
    assert isinstance(spec["inputs"]["n"]["default"], float)
    assert spec["inputs"]["n"]["required"] is False


def test_safe_to_retry_is_false_unless_the_spec_says_so() -> None:
    assert parse_spec(VALID)["safe_to_retry"] is False
    marked = parse_spec(spec_with(lambda raw: raw.update(safe_to_retry=True)))
    assert marked["safe_to_retry"] is True
    assert parse_spec(marked) == marked
    assert errors_of(spec_with(lambda raw: raw.update(safe_to_retry="yes"))) == {
        "$.safe_to_retry": ['must be true or false, not "yes"']
    }
    converted = convert_webmev(json.dumps(WEBMEV_SPEC), entrypoint=WEBMEV_ENTRYPOINT)
    assert converted["safe_to_retry"] is False  # WebMEV has no such notion


def test_yaml_spec_is_accepted() -> None:
    text = """
name: table-summary
version: "1.0.0"
command: summarize {{ table }}
inputs:
  table: {type: file, file_types: [table]}
outputs:
  rows: {type: integer}
"""
    spec = parse_spec(text, source_name="operation.yaml")
    assert spec["inputs"]["table"]["file_types"] == ["table"]


def test_yaml_duplicate_keys_and_unquoted_versions_are_reported() -> None:
    text = """
name: dup
version: 1.0
command: run {{ a }}
inputs:
  a: {type: integer}
  a: {type: string}
"""
    details = errors_of(text, source_name="operation.yml")
    assert "$.inputs.a" in details
    assert "quote it" in details["$.version"][0]


def test_wdl_mode_is_accepted_by_the_parser() -> None:
    spec = parse_spec({"name": "wf", "version": "1", "mode": "wdl"})
    assert spec["mode"] == "wdl"
    assert spec["workflow"] == "main.wdl"
    assert "command" not in spec


# --- every invalid case, by path ----------------------------------------------------------------


INVALID_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "unknown type",
        lambda s: s["inputs"]["ratio"].update(type="decimal"),
        "$.inputs.ratio.type",
        "unknown type",
    ),
    (
        "min greater than max",
        lambda s: s["inputs"]["min_rows"].update(min=10, max=5, default=7),
        "$.inputs.min_rows.min",
        "greater than max",
    ),
    (
        "default outside the bounds",
        lambda s: s["inputs"]["min_rows"].update(default=101),
        "$.inputs.min_rows.default",
        "above the maximum",
    ),
    (
        "default of the wrong type",
        lambda s: s["inputs"]["min_rows"].update(default="3"),
        "$.inputs.min_rows.default",
        "must be an integer",
    ),
    (
        "default not among the choices",
        lambda s: s["inputs"]["method"].update(default="mode"),
        "$.inputs.method.default",
        "not one of the choices",
    ),
    (
        "default not matching the pattern",
        lambda s: s["inputs"]["label"].update(default="ABC"),
        "$.inputs.label.default",
        "does not match",
    ),
    (
        "bad pattern",
        lambda s: s["inputs"]["label"].update(pattern="([a-z"),
        "$.inputs.label.pattern",
        "not a valid regular expression",
    ),
    (
        "unknown placeholder in the command",
        lambda s: s.update(command="summarize {{ table }} {{ tabel }}"),
        "$.command",
        "unknown placeholder {{ tabel }}",
    ),
    (
        "placeholder inside quotes",
        lambda s: s.update(command='summarize "{{ table }}"'),
        "$.command",
        "inside quotes",
    ),
    (
        "template statement",
        lambda s: s.update(command="summarize {{ table }} {% if flag %}-f{% endif %}"),
        "$.command",
        "not supported",
    ),
    (
        "filter in a placeholder",
        lambda s: s.update(command="summarize {{ table | upper }}"),
        "$.command",
        "malformed placeholder",
    ),
    ("bad name", lambda s: s.update(name="Table Summary"), "$.name", "not a valid name"),
    ("name ending in a hyphen", lambda s: s.update(name="table-"), "$.name", "not a valid name"),
    ("missing version", lambda s: s.pop("version"), "$.version", "is required"),
    ("empty version", lambda s: s.update(version=""), "$.version", "must not be empty"),
    ("unknown mode", lambda s: s.update(mode="k8s"), "$.mode", "unknown mode"),
    ("missing command", lambda s: s.pop("command"), "$.command", "is required"),
    (
        "option without choices",
        lambda s: s["inputs"]["method"].pop("choices"),
        "$.inputs.method.choices",
        "is required",
    ),
    (
        "duplicate choices",
        lambda s: s["inputs"]["method"].update(choices=["mean", "mean"]),
        "$.inputs.method.choices[1]",
        "duplicate choice",
    ),
    (
        "unknown file type",
        lambda s: s["inputs"]["table"].update(file_types=["table", "excel"]),
        "$.inputs.table.file_types[1]",
        "unknown file type",
    ),
    (
        "file input with a default",
        lambda s: s["inputs"]["table"].update(default="x.tsv", required=False),
        "$.inputs.table.default",
        "can't have a default",
    ),
    (
        "required input with a default",
        lambda s: s["inputs"]["min_rows"].update(required=True),
        "$.inputs.min_rows.required",
        "can't have a default",
    ),
    (
        "unknown key in an input",
        lambda s: s["inputs"]["ratio"].update(maximum=3),
        "$.inputs.ratio.maximum",
        "unknown key",
    ),
    (
        "constraint of another type",
        lambda s: s["inputs"]["label"].update(min=1),
        "$.inputs.label.min",
        "unknown key",
    ),
    (
        "list of lists",
        lambda s: s["inputs"]["names"].update(items={"type": "list"}),
        "$.inputs.names.items.type",
        "unknown item type",
    ),
    (
        "bad list item constraint",
        lambda s: s["inputs"]["names"].update(items={"type": "integer", "min": 3, "max": 1}),
        "$.inputs.names.items.min",
        "greater than max",
    ),
    (
        "bad input name",
        lambda s: s["inputs"].update({"min-rows": {"type": "integer"}}),
        '$.inputs["min-rows"]',
        "not a valid input name",
    ),
    (
        "file output without a file type",
        lambda s: s["outputs"]["summary"].pop("file_type"),
        "$.outputs.summary.file_type",
        "must be one of",
    ),
    (
        "unknown output type",
        lambda s: s["outputs"]["rows"].update(type="option"),
        "$.outputs.rows.type",
        "unknown output type",
    ),
    (
        "negative resources",
        lambda s: s["resources"].update(memory_mb=-1),
        "$.resources.memory_mb",
        "positive integer",
    ),
    (
        "unknown resource",
        lambda s: s["resources"].update(gpus=1),
        "$.resources.gpus",
        "unknown resource",
    ),
    ("unknown top-level key", lambda s: s.update(input={}), "$.input", "unknown key"),
]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_spec_reports_the_path(
    change: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    details = errors_of(spec_with(change))
    assert path in details, details
    assert any(message in m for m in details[path]), details[path]


def test_duplicate_input_names_in_the_json_text_are_an_error() -> None:
    text = """{
      "name": "dup", "version": "1", "command": "run {{ table }}",
      "inputs": {
        "table": {"type": "file"},
        "table": {"type": "string"}
      }
    }"""
    details = errors_of(text)
    assert details["$.inputs.table"] == ["input 'table' is defined more than once"]


def test_duplicate_keys_anywhere_are_reported_with_their_path() -> None:
    text = '{"name": "a", "name": "b", "version": "1", "command": "x", "inputs": {}}'
    assert "$.name" in errors_of(text)


def test_invalid_json_syntax_is_reported_at_the_root() -> None:
    details = errors_of(b'{"name": "x",}')
    assert list(details) == ["$"]
    assert "invalid JSON (line 1" in details["$"][0]


def test_every_problem_is_reported_at_once() -> None:
    def break_many(s: dict[str, Any]) -> None:
        s.update(name="Bad Name", command="run {{ nope }}")
        s["inputs"]["min_rows"].update(default=500)
        s["inputs"]["method"].update(default="mode")
        s["inputs"]["label"].update(pattern="(")
        s["inputs"]["ratio"].update(type="decimal")

    raw = spec_with(break_many)
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    paths = {e["path"] for e in caught.value.errors}
    assert paths == {
        "$.name",
        "$.command",
        "$.inputs.min_rows.default",
        "$.inputs.method.default",
        "$.inputs.label.pattern",
        "$.inputs.ratio.type",
    }
    assert "(and 5 more)" in caught.value.message
    assert all(line.startswith("  $") for line in caught.value.describe().splitlines()[1:])


def test_spec_error_is_an_application_error_for_the_api() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(lambda s: s.update(name="")))
    error = caught.value
    assert isinstance(error, ApplicationError)
    assert (error.status_code, error.code) == (400, "invalid_spec")
    assert error.details == {"$.name": [error.errors[0]["message"]]}
    assert error.message.startswith("operation.json is not a valid operation spec: $.name")


# --- WebMEV ---------------------------------------------------------------------------------------

WEBMEV_SPEC: dict[str, Any] = {
    "name": "Differential expression (DESeq2-like)",
    "description": "Compare two groups of samples.",
    "inputs": {
        "raw_counts": {
            "description": "An integer count matrix.",
            "name": "Count matrix:",
            "required": True,
            "converter": "api.converters.data_resource.LocalDockerSingleVariableDataResourceConverter",
            "spec": {
                "attribute_type": "VariableDataResource",
                "resource_types": ["I_MTX", "RNASEQ_COUNT_MTX"],
                "many": False,
            },
        },
        "annotations": {
            "description": "Sample annotations or a JSON description.",
            "name": "Annotations:",
            "required": False,
            "converter": "api.converters.data_resource.LocalDockerSingleVariableDataResourceConverter",
            "spec": {
                "attribute_type": "VariableDataResource",
                "resource_types": ["ANN", "JSON"],
                "many": False,
            },
        },
        "min_count": {
            "description": "Drop genes with fewer reads.",
            "name": "Minimum count:",
            "required": True,
            "converter": "api.converters.basic_attributes.IntegerConverter",
            "spec": {"attribute_type": "BoundedInteger", "min": 0, "max": 1000, "default": 10},
        },
        "method": {
            "description": "The test to use.",
            "name": "Test:",
            "required": True,
            "converter": "api.converters.basic_attributes.StringConverter",
            "spec": {"attribute_type": "OptionString", "options": ["Wald", "LRT"]},
        },
        "alpha": {
            "description": "FDR threshold.",
            "name": "Alpha:",
            "required": False,
            "converter": "api.converters.basic_attributes.FloatConverter",
            "spec": {"attribute_type": "BoundedFloat", "min": 0, "max": 1.0, "default": 0.1},
        },
    },
    "outputs": {
        "dge_results": {
            "required": True,
            "converter": "api.converters.data_resource.LocalDockerSingleDataResourceConverter",
            "spec": {"attribute_type": "DataResource", "resource_type": "FT", "many": False},
        },
        "plots": {
            "required": False,
            "converter": "api.converters.data_resource.LocalDockerMultipleVariableDataResourceConverter",
            "spec": {
                "attribute_type": "VariableDataResource",
                "resource_types": ["JSON"],
                "many": True,
            },
        },
        "n_significant": {
            "required": True,
            "converter": "api.converters.basic_attributes.IntegerConverter",
            "spec": {"attribute_type": "NonNegativeInteger"},
        },
    },
    "mode": "local_docker",
    "workspace_operation": True,
}
WEBMEV_ENTRYPOINT = (
    'Rscript /opt/software/dge.R "{{raw_counts}}" {{annotations}} {{min_count}} {{method}} '
    "{{alpha}}\n"
)


def test_webmev_spec_is_converted() -> None:
    spec = convert_webmev(json.dumps(WEBMEV_SPEC), entrypoint=WEBMEV_ENTRYPOINT)
    assert spec["name"] == "differential-expression-deseq2-like"
    assert spec["version"] == "0"
    assert spec["mode"] == "docker"
    # The entrypoint is kept as WebMEV's Jinja template, rendered by render_argv.
    assert spec["command"] == WEBMEV_ENTRYPOINT.strip()
    assert spec["command_style"] == "webmev"
    inputs = spec["inputs"]
    assert inputs["raw_counts"]["type"] == "file"
    assert inputs["raw_counts"]["file_types"] == ["table"]
    assert inputs["raw_counts"]["webmev"]["resource_types"] == ["I_MTX", "RNASEQ_COUNT_MTX"]
    assert inputs["raw_counts"]["webmev"]["name"] == "Count matrix:"
    assert inputs["annotations"]["file_types"] == ["table", "json"]
    assert inputs["annotations"]["required"] is False
    # Required in WebMEV but with a default: optional in Ferry.
    assert inputs["min_count"] | {"webmev": None} == {
        "type": "integer",
        "min": 0,
        "max": 1000,
        "description": "Drop genes with fewer reads.",
        "required": False,
        "default": 10,
        "render": "value",
        "webmev": None,
    }
    assert inputs["method"]["type"] == "option"
    assert inputs["method"]["choices"] == ["Wald", "LRT"]
    assert inputs["alpha"]["min"] == 0.0
    assert inputs["alpha"]["default"] == 0.1
    outputs = spec["outputs"]
    assert outputs["dge_results"]["type"] == "file"
    assert outputs["dge_results"]["file_type"] == "table"
    assert outputs["dge_results"]["webmev"]["resource_type"] == "FT"
    assert outputs["plots"]["type"] == "list"
    assert outputs["plots"]["items"] == {"type": "file", "file_type": "json"}
    assert outputs["n_significant"]["type"] == "integer"
    argv = render_argv(spec, {"raw_counts": "/inputs/raw_counts/c.tsv", "method": "Wald"})
    assert argv == [
        "Rscript",
        "/opt/software/dge.R",
        "/inputs/raw_counts/c.tsv",
        "10",
        "Wald",
        "0.1",
    ]
    with pytest.raises(ValueError, match="render_argv"):
        render_command(spec, {"raw_counts": "/inputs/raw_counts/c.tsv", "method": "Wald"})


def test_webmev_converters_json_is_used_for_older_specs() -> None:
    raw = copy.deepcopy(WEBMEV_SPEC)
    converters = {key: entry.pop("converter") for key, entry in raw["inputs"].items()}
    spec = convert_webmev(raw, entrypoint=WEBMEV_ENTRYPOINT, converters=converters)
    assert spec["inputs"]["method"]["webmev"]["converter"].endswith("StringConverter")
    assert spec["inputs"]["method"]["render"] == "normalized"
    # Without converters.json, an input without its converter is refused (as WebMEV does).
    with pytest.raises(SpecError) as caught:
        convert_webmev(raw, entrypoint=WEBMEV_ENTRYPOINT)
    assert "$.inputs.method.converter" in caught.value.details


def test_webmev_unconvertible_parts_are_reported_by_path() -> None:
    raw = copy.deepcopy(WEBMEV_SPEC)
    raw["inputs"]["samples"] = {
        "description": "The samples to use.",
        "name": "Samples:",
        "required": False,
        "converter": "api.converters.element_set.ObservationSetCsvConverter",
        "spec": {"attribute_type": "ObservationSet"},
    }
    raw["inputs"]["genes"] = {  # no description or name: WebMEV refuses it
        "required": False,
        "converter": "api.converters.basic_attributes.StringListToCsvConverter",
        "spec": {"attribute_type": "StringList"},
    }
    raw["inputs"]["raw_counts"]["spec"]["resource_types"] = ["I_MTX", "H5AD"]
    raw["inputs"]["min_count"]["spec"]["default"] = 5000
    entrypoint = WEBMEV_ENTRYPOINT.strip() + " {% if samples %}-s {{samples}}{% endif %} {{genes}}"
    with pytest.raises(SpecError) as caught:
        convert_webmev(raw, entrypoint=entrypoint)
    details = caught.value.details
    assert "is required" in details["$.inputs.genes.description"][0]
    assert "is required" in details["$.inputs.genes.name"][0]
    assert "H5AD" in details["$.inputs.raw_counts.spec.resource_types"][0]
    assert "above the maximum" in details["$.inputs.min_count.spec.default"][0]
    # Sets and {% if %} templates are WebMEV's own: no problem with them.
    assert "$.inputs.samples.spec.attribute_type" not in details
    assert "entrypoint.txt" not in details
    assert caught.value.code == "invalid_spec"


def test_webmev_without_entrypoint_or_with_unknown_mode() -> None:
    raw = copy.deepcopy(WEBMEV_SPEC)
    raw["mode"] = "nextflow"
    with pytest.raises(SpecError) as caught:
        convert_webmev(raw, entrypoint=WEBMEV_ENTRYPOINT)
    assert "$.mode" in caught.value.details
    with pytest.raises(SpecError) as caught:
        convert_webmev(WEBMEV_SPEC, entrypoint=None)
    assert "entrypoint.txt" in caught.value.details


def test_webmev_name_is_slugified() -> None:
    assert (
        operation_slug("Principal component analysis (PCA)") == "principal-component-analysis-pca"
    )
    assert operation_slug("mev_edgeR") == "mev-edger"
    assert operation_slug("  --Ünïcode--  ") == "unicode"


# --- rendering ------------------------------------------------------------------------------------

RENDER_SPEC = parse_spec(
    {
        "name": "echo",
        "version": "1",
        "command": "printf '%s\\n' {{ text }} {{ files }} {{ flag }} {{ count }} {{ ratio }} "
        "{{ optional }} {{ with_default }}",
        "inputs": {
            "text": {"type": "string"},
            "files": {"type": "file", "many": True},
            "flag": {"type": "boolean"},
            "count": {"type": "integer"},
            "ratio": {"type": "float"},
            "optional": {"type": "string", "required": False},
            "with_default": {"type": "option", "choices": ["a b", "c"], "default": "a b"},
        },
    }
)


def run_sh(command: str) -> list[str]:
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=True)
    return done.stdout.decode().split("\n")[:-1]


def test_render_command_quotes_every_value() -> None:
    values = {
        "text": "x; rm -rf /",
        "files": ["/inputs/files/0/a b.tsv", "/inputs/files/1/$(reboot).tsv"],
        "flag": True,
        "count": -3,
        "ratio": 0.25,
    }
    command = render_command(RENDER_SPEC, values)
    assert command == (
        "printf '%s\\n' 'x; rm -rf /' '/inputs/files/0/a b.tsv' '/inputs/files/1/$(reboot).tsv' "
        "true -3 0.25  'a b'"
    )
    assert run_sh(command) == [
        "x; rm -rf /",
        "/inputs/files/0/a b.tsv",
        "/inputs/files/1/$(reboot).tsv",
        "true",
        "-3",
        "0.25",
        "a b",
    ]


def test_render_command_conventions() -> None:
    base = {"text": "", "files": [], "flag": False, "count": 0, "ratio": 1.0}
    # An empty string is an (empty) argument; an empty list and an absent optional are nothing.
    assert run_sh(render_command(RENDER_SPEC, base)) == ["", "false", "0", "1.0", "a b"]
    with_optional = render_command(RENDER_SPEC, {**base, "optional": "it's", "with_default": "c"})
    assert run_sh(with_optional) == ["", "false", "0", "1.0", "it's", "c"]
    # Values that look like placeholders are not expanded again.
    assert run_sh(render_command(RENDER_SPEC, {**base, "text": "{{ count }}"}))[0] == "{{ count }}"


def test_render_command_refuses_missing_and_unknown_values() -> None:
    with pytest.raises(ValueError, match="required input 'text'"):
        render_command(RENDER_SPEC, {"files": [], "flag": True, "count": 1, "ratio": 1.0})
    with pytest.raises(ValueError, match="no such inputs: nope"):
        render_command(RENDER_SPEC, {"nope": 1})


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
def test_any_string_survives_the_shell_literally(text: str) -> None:
    spec = parse_spec(
        {
            "name": "p",
            "version": "1",
            "command": "printf %s {{ s }}",
            "inputs": {"s": {"type": "string"}},
        }
    )
    done = subprocess.run(
        ["/bin/sh", "-c", render_command(spec, {"s": text})], capture_output=True, check=True
    )
    assert done.stdout.decode("utf-8", "surrogateescape") == text
