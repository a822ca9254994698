"""WebMEV operation specs: the vocabulary, converters and strictness of WebMEV's own backend.

The fixtures in webmev_specs/ are written in WebMEV's format after the cases WebMEV's tests use
(a spec missing workspace_operation and converters, an input swallowing three others through a
missing brace); each refusal is asserted by its JSON path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.exceptions import ApplicationError
from operations.inputs import validate_inputs
from operations.spec import SpecError, parse_spec, value_errors
from operations.webmev import convert_webmev
from operations.webmev_vocabulary import INPUT_CONVERTERS, RESOURCE_TYPE_FILE_TYPES

SPECS = Path(__file__).parent / "webmev_specs"
BA = "api.converters.basic_attributes."


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / name).read_text())
    return loaded


LOCAL = load("valid_local_operation.json")
LOCAL_ENTRYPOINT = (SPECS / "valid_local_entrypoint.txt").read_text()
CROMWELL = load("valid_cromwell_operation.json")


def refused(raw: Any, entrypoint: str | None = LOCAL_ENTRYPOINT, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        convert_webmev(raw, entrypoint=entrypoint, **kwargs)
    return caught.value


def local_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = copy.deepcopy(LOCAL)
    change(raw)
    return raw


def one_input(spec: dict[str, Any], converter: str = BA + "UnrestrictedStringConverter") -> Any:
    """A minimal valid local operation with the one input ``x``."""
    return {
        "name": "one",
        "description": "",
        "inputs": {
            "x": {
                "description": "",
                "name": "X:",
                "required": False,
                "converter": converter,
                "spec": spec,
            }
        },
        "outputs": {},
        "mode": "local_docker",
        "workspace_operation": False,
    }


# --- valid specs ----------------------------------------------------------------------------------


def test_every_attribute_type_converts() -> None:
    spec = convert_webmev(LOCAL, entrypoint=LOCAL_ENTRYPOINT)
    assert spec["command_style"] == "webmev"
    assert spec["mode"] == "docker"
    assert spec["webmev"]["workspace_operation"] is True
    inputs = spec["inputs"]
    kinds = {name: entry["type"] for name, entry in inputs.items()}
    assert kinds == {
        "matrix": "file",
        "annotation": "file",
        "peaks": "file",
        "tracks": "file",
        "samples": "observation_set",
        "genes": "feature_set",
        "count": "integer",
        "positive": "integer",
        "nonnegative": "integer",
        "bounded": "integer",
        "ratio": "float",
        "positive_ratio": "float",
        "nonnegative_ratio": "float",
        "alpha": "float",
        "label": "string",
        "title": "string",
        "method": "option",
        "methods": "list",
        "k": "option",
        "quantile": "option",
        "mixed": "option",
        "flag": "boolean",
        "names": "list",
        "notes": "list",
        "levels": "list",
        "weights": "list",
    }
    assert (inputs["positive"]["min"], inputs["nonnegative"]["min"]) == (1, 0)
    assert (inputs["bounded"]["min"], inputs["bounded"]["max"]) == (1, 9)
    assert inputs["positive_ratio"]["min"] > 0
    assert inputs["nonnegative_ratio"]["min"] == 0
    assert inputs["ratio"]["default"] == "--inf--"  # WebMEV's infinity marker
    assert inputs["nonnegative_ratio"]["infinity"] == ["++inf++"]
    assert inputs["k"]["choices"] == [5, 10, 15]
    assert inputs["k"]["default"] == 10
    assert inputs["mixed"]["choices"] == ["abc", 1, 2.5]
    assert inputs["methods"]["items"]["choices"] == ["a", "b", "c"]
    assert inputs["levels"]["items"] == {"type": "integer", "min": 0, "max": 3}
    assert inputs["weights"]["items"] == {"type": "float", "min": 0.0, "max": 1.0}
    assert inputs["flag"]["default"] is False
    assert inputs["flag"]["render"] == "bool_int"
    assert inputs["matrix"]["file_types"] == ["table"]
    assert inputs["peaks"]["many"] is True
    assert inputs["matrix"]["webmev"]["resource_types"] == ["MTX", "I_MTX", "EXP_MTX"]
    assert inputs["annotation"]["webmev"]["resource_type"] == "ANN"
    outputs = spec["outputs"]
    assert outputs["result"]["type"] == "file"
    assert outputs["result"]["file_type"] == "table"
    assert outputs["result"]["webmev"]["resource_types"] == ["MTX", "EXP_MTX"]
    assert outputs["plots"] == {
        "type": "list",
        "items": {"type": "file", "file_type": "json"},
        "description": "",
        "required": False,
        "webmev": {
            "attribute_type": "DataResource",
            "converter": "api.converters.data_resource.LocalDockerMultipleDataResourceConverter",
            "resource_type": "JSON",
            "many": True,
        },
    }
    assert outputs["explained"]["type"] == "float"
    assert outputs["summary"]["webmev"]["converter"].endswith("JsonConverter")
    # The converted spec is a normalized Ferry spec: checking it again gives it back.
    assert parse_spec(spec) == spec


def test_values_are_checked_as_webmev_checks_them() -> None:
    inputs = convert_webmev(LOCAL, entrypoint=LOCAL_ENTRYPOINT)["inputs"]
    assert value_errors(inputs["ratio"], "++inf++") == []
    assert value_errors(inputs["positive_ratio"], "--inf--") != []
    assert value_errors(inputs["alpha"], "++inf++") != []
    assert value_errors(inputs["mixed"], "abc") == []
    assert value_errors(inputs["mixed"], 1) == []
    assert "not one of the choices" in value_errors(inputs["mixed"], "1")[0]
    assert value_errors(inputs["label"], " two words ") == []
    assert value_errors(inputs["label"], "semi;colon") != []
    assert value_errors(inputs["samples"], {"elements": [{"id": "S1", "attributes": {}}]}) == []
    assert value_errors(inputs["samples"], []) != []


def test_job_inputs_take_webmevs_infinity() -> None:
    spec = convert_webmev(LOCAL, entrypoint=LOCAL_ENTRYPOINT)
    spec["inputs"]["matrix"]["required"] = False  # no file needed here
    values = validate_inputs(spec, {"ratio": "--inf--", "positive_ratio": 2}, user=None)
    assert values["ratio"] == "--inf--"
    assert values["positive_ratio"] == 2.0
    with pytest.raises(ApplicationError) as caught:
        validate_inputs(spec, {"positive_ratio": "--inf--"}, user=None)
    assert list(caught.value.details) == ["inputs.positive_ratio"]


def test_resource_types_are_webmevs_19() -> None:
    assert len(RESOURCE_TYPE_FILE_TYPES) == 19
    assert {"BAI", "NRWPK", "WIG", "BEDGRAPH", "*"} <= set(RESOURCE_TYPE_FILE_TYPES)
    assert not {"BED", "TSV", "CSV", "TXT", "BW"} & set(RESOURCE_TYPE_FILE_TYPES)


def test_tolerated_keys_and_old_converters_json() -> None:
    raw = copy.deepcopy(LOCAL)
    converters = {key: entry.pop("converter") for key, entry in raw["inputs"].items()}
    spec = convert_webmev(raw, entrypoint=LOCAL_ENTRYPOINT, converters=converters)
    assert spec["inputs"]["flag"]["render"] == "bool_int"
    assert "id" not in spec
    assert "git_hash" not in spec["webmev"]


def test_set_defaults_are_kept() -> None:
    default = {"elements": [{"id": "S1", "attributes": {}}, {"id": "S2"}]}
    raw = one_input(
        {"attribute_type": "ObservationSet", "default": default},
        "api.converters.element_set.ObservationSetCsvConverter",
    )
    converted = convert_webmev(raw, entrypoint="run {{x}}")
    # Kept, normalized as every set value is: each element has its attributes.
    assert converted["inputs"]["x"]["default"] == {
        "elements": [{"id": "S1", "attributes": {}}, {"id": "S2", "attributes": {}}]
    }


# --- WebMEV's malformed-spec fixtures -------------------------------------------------------------


def test_invalid_operation_is_refused_by_path() -> None:
    error = refused(load("invalid_operation.json"), entrypoint="run {{table}}")
    details = error.details
    assert "is required" in details["$.workspace_operation"][0]
    assert "is required" in details["$.inputs.table.converter"][0]
    assert "is required" in details["$.inputs.keep.converter"][0]
    assert "is required" in details["$.outputs.kept.converter"][0]
    assert "does not take 'resource_types'" in details["$.inputs.table.spec.resource_types"][0]
    assert "is required" in details["$.inputs.table.spec.resource_type"][0]


def test_bad_formatting_names_the_swallowed_inputs() -> None:
    error = refused(load("op_with_bad_formatting.json"), entrypoint=None)
    base = '$.inputs["TwoGroup.groupA"]'
    swallowed = [f'{base}["TwoGroup.{name}"]' for name in ("groupB", "nameA", "nameB")]
    assert set(error.details) == set(swallowed)
    for path in swallowed:
        assert "closing brace" in error.details[path][0]


@pytest.mark.parametrize("mode", ["nf_local", "nf_batch", "ecs"])
def test_other_runners_are_refused_with_one_error(mode: str) -> None:
    raw = local_with(lambda r: r.update(mode=mode, extra_key=1))
    raw["inputs"]["count"].pop("converter")  # would be an error too: not reported
    error = refused(raw, entrypoint=None)
    assert len(error.errors) == 1
    assert list(error.details) == ["$.mode"]
    expected = "Nextflow isn't supported" if mode.startswith("nf_") else "ECS"
    assert expected in error.errors[0]["message"]


def test_unknown_mode_is_named() -> None:
    error = refused(local_with(lambda r: r.update(mode="garbage")))
    assert "garbage" in error.details["$.mode"][0]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = raw
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = raw
        for part in parents:
            target = target[part]
        del target[last]

    return change


INLINE_CASES = [
    (
        "input without description",
        _drop("inputs/count/description"),
        "$.inputs.count.description",
        "is required",
    ),
    ("input without name", _drop("inputs/count/name"), "$.inputs.count.name", "is required"),
    (
        "input without required",
        _drop("inputs/count/required"),
        "$.inputs.count.required",
        "is required",
    ),
    (
        "output without converter",
        _drop("outputs/result/converter"),
        "$.outputs.result.converter",
        "is required",
    ),
    ("extra input key", _set("inputs/count/extra", 1), "$.inputs.count.extra", "unknown key"),
    ("extra output key", _set("outputs/result/extra", 1), "$.outputs.result.extra", "unknown key"),
    (
        "output with a name",
        _set("outputs/result/name", "R"),
        "$.outputs.result.name",
        "unknown key",
    ),
    (
        "required not boolean",
        _set("inputs/count/required", "abc"),
        "$.inputs.count.required",
        "boolean",
    ),
    ("extra top-level key", _set("categories", ["x"]), "$.categories", "unknown key"),
    ("missing top-level key", _drop("description"), "$.description", "is required"),
    ("inputs not an object", _set("inputs", ["a"]), "$.inputs", "must be an object"),
    (
        "bounded default out of bounds",
        _set("inputs/bounded/spec/default", 100),
        "$.inputs.bounded.spec.default",
        "above the maximum",
    ),
    (
        "positive default negative",
        _set("inputs/positive/spec/default", -3),
        "$.inputs.positive.spec.default",
        "below the minimum",
    ),
    (
        "bounds missing",
        _drop("inputs/bounded/spec/max"),
        "$.inputs.bounded.spec.max",
        "is required",
    ),
    (
        "unknown attribute type",
        _set("inputs/count/spec/attribute_type", "GARBAGE"),
        "$.inputs.count.spec.attribute_type",
        "GARBAGE",
    ),
    (
        "old spelling",
        _set("inputs/nonnegative/spec/attribute_type", "NonnegativeInteger"),
        "$.inputs.nonnegative.spec.attribute_type",
        "NonNegativeInteger",
    ),
    (
        "attribute_type missing",
        _drop("inputs/count/spec/attribute_type"),
        "$.inputs.count.spec.attribute_type",
        "is required",
    ),
    (
        "unknown spec key",
        _set("inputs/count/spec/foo", 1),
        "$.inputs.count.spec.foo",
        "does not take 'foo'",
    ),
    (
        "set default not an object",
        _set("inputs/samples/spec/default", []),
        "$.inputs.samples.spec.default",
        "expects a dictionary",
    ),
    (
        "element without id",
        _set("inputs/samples/spec/default", {"elements": [{"attributes": {}}]}),
        "$.inputs.samples.spec.default",
        'requires an "id" key',
    ),
    (
        "element extra key",
        _set("inputs/genes/spec/default", {"elements": [{"id": "g", "x": 1}]}),
        "$.inputs.genes.spec.default",
        "extra keys",
    ),
    (
        "duplicate elements",
        _set("inputs/genes/spec/default", {"elements": [{"id": "g"}, {"id": "g"}]}),
        "$.inputs.genes.spec.default",
        "duplicate",
    ),
    (
        "variable resource without many",
        _drop("inputs/matrix/spec/many"),
        "$.inputs.matrix.spec.many",
        "is required",
    ),
    (
        "variable resource without types",
        _drop("inputs/matrix/spec/resource_types"),
        "$.inputs.matrix.spec.resource_types",
        "is required",
    ),
    (
        "resource_types not a list",
        _set("inputs/matrix/spec/resource_types", "MTX"),
        "$.inputs.matrix.spec.resource_types",
        "list",
    ),
    (
        "unknown resource types",
        _set("inputs/matrix/spec/resource_types", ["MTX", "XYZ", "DEF"]),
        "$.inputs.matrix.spec.resource_types",
        "XYZ, DEF",
    ),
    (
        "unknown output resource type",
        _set("outputs/plots/spec/resource_type", "BED"),
        "$.outputs.plots.spec.resource_type",
        "BED",
    ),
    (
        "variable resource with one type",
        _set("inputs/matrix/spec/resource_type", "MTX"),
        "$.inputs.matrix.spec.resource_type",
        'lists "resource_types"',
    ),
    (
        "operation resource",
        _set("inputs/annotation/spec/attribute_type", "OperationDataResource"),
        "$.inputs.annotation.spec.attribute_type",
        "not supported",
    ),
    (
        "option default not an option",
        _set("inputs/mixed/spec/default", "1"),
        "$.inputs.mixed.spec.default",
        "not one of the choices",
    ),
    (
        "many option with a scalar",
        _set("inputs/methods/spec/default", "a"),
        "$.inputs.methods.spec.default",
        "must be a list",
    ),
    (
        "single option with a list",
        _set("inputs/method/spec/default", ["mean"]),
        "$.inputs.method.spec.default",
        "not one of the choices",
    ),
    (
        "integer option with a string",
        _set("inputs/k/spec/options", [5, "10"]),
        "$.inputs.k.spec.options[1]",
        "not a valid IntegerOption",
    ),
    (
        "string default invalid",
        _set("inputs/label/spec/default", "a;b"),
        "$.inputs.label.spec.default",
        "pattern",
    ),
    (
        "boolean default invalid",
        _set("inputs/flag/spec/default", "maybe"),
        "$.inputs.flag.spec.default",
        "Boolean",
    ),
    (
        "unknown converter",
        _set("inputs/count/converter", BA + "NoSuchConverter"),
        "$.inputs.count.converter",
        "NoSuchConverter",
    ),
    (
        "converter in the wrong module",
        _set("inputs/count/converter", "api.converters.element_set.IntegerConverter"),
        "$.inputs.count.converter",
        "basic_attributes",
    ),
    (
        "not a converter path",
        _set("inputs/count/converter", "my.module.IntegerConverter"),
        "$.inputs.count.converter",
        "not a WebMEV converter",
    ),
    (
        "cromwell converter locally",
        _set("inputs/annotation/converter", "CromwellSingleDataResourceConverter"),
        "$.inputs.annotation.converter",
        "cromwell operations",
    ),
    (
        "base class as converter",
        _set("inputs/samples/converter", "api.converters.element_set.ObservationSetConverter"),
        "$.inputs.samples.converter",
        "base class",
    ),
    (
        "nextflow converter",
        _set("inputs/annotation/converter", "RemoteNextflowSingleDataResourceConverter"),
        "$.inputs.annotation.converter",
        "Nextflow",
    ),
    (
        "converter for another kind",
        _set("inputs/flag/converter", "ObservationSetCsvConverter"),
        "$.inputs.flag.converter",
        "does not convert",
    ),
    (
        "input-only converter on an output",
        _set("outputs/result/converter", "LocalDockerCsvResourceConverter"),
        "$.outputs.result.converter",
        "inputs only",
    ),
    (
        "set as output",
        _set("outputs/explained/spec", {"attribute_type": "FeatureSet"}),
        "$.outputs.explained.spec.attribute_type",
        "FeatureSet",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [case[1:] for case in INLINE_CASES],
    ids=[case[0] for case in INLINE_CASES],
)
def test_malformed_spec_is_refused_by_path(
    change: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    error = refused(local_with(change))
    assert path in error.details, error.describe()
    assert any(fragment in message for message in error.details[path]), error.details[path]
    assert error.status_code == 400


def test_entrypoint_problems_are_reported() -> None:
    error = refused(LOCAL, entrypoint="run {{ count }}\n{% if flag %}\n")
    assert error.details["entrypoint.txt"][0].startswith("entrypoint.txt:2:")
    error = refused(LOCAL, entrypoint="run {{ nope }}")
    assert "nope" in error.details["entrypoint.txt"][0]
    error = refused(LOCAL, entrypoint='run "{{ count }}')
    assert "can't be split" in error.details["entrypoint.txt"][0]
    error = refused(LOCAL, entrypoint=None)
    assert "missing" in error.details["entrypoint.txt"][0]


# --- converters -----------------------------------------------------------------------------------

_FAMILY_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "set": ({"attribute_type": "FeatureSet"}, "feature_set"),
    "list": ({"attribute_type": "UnrestrictedStringList"}, "list"),
    "boolean": ({"attribute_type": "Boolean"}, "boolean"),
    "number": ({"attribute_type": "Float"}, "float"),
    "string": ({"attribute_type": "String"}, "string"),
    "option": ({"attribute_type": "OptionString", "options": ["a"]}, "option"),
    "file": ({"attribute_type": "DataResource", "resource_type": "*", "many": False}, "file"),
    "files": ({"attribute_type": "DataResource", "resource_type": "*", "many": True}, "file"),
}


@pytest.mark.parametrize("bare", [False, True], ids=["dotted", "bare"])
@pytest.mark.parametrize("converter", sorted(INPUT_CONVERTERS))
def test_every_input_converter_is_known(converter: str, bare: bool) -> None:
    modules, render, families, mode = INPUT_CONVERTERS[converter]
    family = sorted(families)[0]
    spec, ferry_type = _FAMILY_SPECS[family] if family != "element" else _FAMILY_SPECS["string"]
    name = converter if bare else f"api.converters.{modules[0]}.{converter}"
    raw = one_input(spec, name)
    if mode == "cromwell":
        raw["mode"] = "cromwell"
        raw["inputs"] = {"Wf.x": raw["inputs"]["x"]}
        converted = convert_webmev(raw, entrypoint=None)
    else:
        converted = convert_webmev(raw, entrypoint="run {{ x }}")
    entry = converted["inputs"]["x"]
    assert entry["render"] == render
    assert entry["type"] == ferry_type
    assert entry["webmev"]["converter"] == name


@pytest.mark.parametrize(
    "converter",
    [
        "BoundedFloatAttributeConverter",
        "api.converters.basic_attributes.BoundedFloatAttributeConverter",
        "LocalDataResourceConverter",
        "CromwellDataResourceConverter",
    ],
)
def test_older_converter_names_are_accepted(converter: str) -> None:
    if "Bounded" in converter:
        spec: dict[str, Any] = {"attribute_type": "BoundedFloat", "min": 0, "max": 1}
    else:
        spec = {"attribute_type": "DataResource", "resource_type": "MTX", "many": False}
    raw = one_input(spec, converter)
    if "Cromwell" in converter:
        raw.update(mode="cromwell", inputs={"Wf.x": raw["inputs"]["x"]})
    convert_webmev(raw, entrypoint="run {{ x }}")


# --- cromwell mode --------------------------------------------------------------------------------


def test_cromwell_operation_converts_to_wdl() -> None:
    spec = convert_webmev(CROMWELL, entrypoint=None)
    assert spec["mode"] == "wdl"
    assert spec["workflow"] == "main.wdl"
    assert "command" not in spec
    inputs = spec["inputs"]
    assert list(inputs) == ["counts", "groupA", "groupB", "nameA", "nameB", "method"]
    assert {name: entry["wdl_input"] for name, entry in inputs.items()} == {
        name: f"TwoGroup.{name}" for name in inputs
    }
    assert inputs["method"]["choices"] == ["wald", "lrt"]
    assert inputs["method"]["default"] == "wald"
    assert inputs["method"]["required"] is False
    assert inputs["nameA"]["default"] == "group_A"
    assert inputs["groupA"]["type"] == "observation_set"
    assert inputs["groupA"]["render"] == "json"
    assert inputs["counts"]["render"] == "path"
    outputs = spec["outputs"]
    assert outputs["results"]["wdl_output"] == "TwoGroup.results"
    assert outputs["n_significant"]["type"] == "integer"
    assert outputs["n_significant"]["wdl_output"] == "TwoGroup.n_significant"
    assert parse_spec(spec) == spec


def test_cromwell_names_must_be_fully_qualified_and_distinct() -> None:
    raw = copy.deepcopy(CROMWELL)
    raw["inputs"]["Other.counts"] = copy.deepcopy(raw["inputs"]["TwoGroup.counts"])
    raw["inputs"]["plain"] = copy.deepcopy(raw["inputs"]["TwoGroup.nameA"])
    error = refused(raw, entrypoint=None)
    collision = error.details['$.inputs["Other.counts"]'][0]
    assert "TwoGroup.counts" in collision
    assert "'counts'" in collision
    assert "Workflow.input" in error.details["$.inputs.plain"][0]
    raw = copy.deepcopy(CROMWELL)
    raw["inputs"]["TwoGroup.counts"]["converter"] = "LocalDockerSingleDataResourceConverter"
    error = refused(raw, entrypoint=None)
    assert "local_docker operations" in error.details['$.inputs["TwoGroup.counts"].converter'][0]
