"""What womtool refuses and miniwdl accepts is reported as warnings at its place (mixed command
indentation, a declaration named like a type, a draft-2 call setting a computed value), and
nothing is reported for a workflow womtool accepts; an operation signature is read from
Cromwell's describe answer for a document miniwdl refuses."""

from __future__ import annotations

import pytest

import wdl
from wdl.errors import format_error


def _warnings(text: str) -> list[str]:
    loaded = wdl.load_workflow(wdl.bundle_from_text(text))
    return [format_error(w) for w in wdl.womtool_warnings(loaded)]


MIXED_INDENT = "version 1.0\n\nworkflow w {\n  call greet\n}\n\ntask greet {\n  command <<<\n\techo one\n    echo two\n  >>>\n}\n"
TYPE_NAMED = """version 1.0

workflow w {
  input {
    Int n = 3
  }
  output {
    Int Directory = n
  }
}
"""
COMPUTED_SET = """task scale {
  Int factor
  Int doubled = factor * 2
  command { echo ${doubled} }
  output { Int out = read_int(stdout()) }
}

workflow w {
  call scale { input: factor = 3, doubled = 7 }
}
"""
CLEAN_DRAFT2 = """task scale {
  Int factor
  Int offset = 1
  command { echo ${factor + offset} }
  output { Int out = read_int(stdout()) }
}

workflow w {
  call scale { input: factor = 3, offset = 2 }
}
"""
CLEAN_1_0 = """version 1.0

workflow w {
  input {
    Int n = 3
  }
  call greet { input: n = n }
}

task greet {
  input {
    Int n
  }
  command <<<
    echo ~{n}
      echo indented more, still spaces
  >>>
}
"""


def test_mixed_tabs_and_spaces_in_a_command() -> None:
    (warning,) = _warnings(MIXED_INDENT)
    assert warning.startswith("main.wdl:8:3: womtool refuses this command of task greet")
    assert "tabs and spaces" in warning


def test_a_declaration_named_like_a_type() -> None:
    (warning,) = _warnings(TYPE_NAMED)
    assert warning.startswith("main.wdl:8:5: womtool refuses a declaration named Directory")


def test_a_draft2_call_setting_a_value_its_task_computes() -> None:
    (warning,) = _warnings(COMPUTED_SET)
    assert warning.startswith("main.wdl:9:45: womtool refuses this call's input doubled")


@pytest.mark.parametrize("text", [CLEAN_DRAFT2, CLEAN_1_0])
def test_nothing_for_what_womtool_accepts(text: str) -> None:
    assert _warnings(text) == []


def test_a_signature_from_cromwells_description() -> None:
    described = {
        "valid": True,
        "name": "wf",
        "inputs": [
            {"name": "wf.reads", "valueType": {"typeName": "File"}, "optional": False},
            {
                "name": "wf.label",
                "valueType": {"typeName": "Optional", "optionalType": {"typeName": "String"}},
                "optional": True,
                "default": '"x"',
            },
            {
                "name": "wf.step.n",
                "valueType": {"typeName": "Int"},
                "optional": True,
                "default": "2",
            },
            {
                "name": "wf.pairs",
                "valueType": {
                    "typeName": "Pair",
                    "pairTypes": [
                        {"leftType": [{"typeName": "Int"}]},
                        {"rightType": [{"typeName": "String"}]},
                    ],
                },
                "optional": False,
            },
            {"name": "wf.loose", "valueType": {"typeName": "Object"}, "optional": True},
        ],
        "outputs": [
            {
                "name": "wf.table",
                "valueType": {"typeName": "Array", "arrayType": {"typeName": "File"}},
            },
            {
                "name": "wf.pair",
                "valueType": {
                    "typeName": "Pair",
                    "tupleTypes": [{"typeName": "Int"}, {"typeName": "String"}],
                },
            },
        ],
        "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": "draft-2"},
    }
    signature = wdl.signature_from_description(described)
    inputs = signature["inputs"]
    assert set(inputs) == {"reads", "label", "step__n", "pairs"}  # optional Object left out
    assert inputs["reads"]["type"] == "file"
    assert inputs["reads"]["required"] is True
    assert inputs["label"]["default"] == "x"
    assert inputs["step__n"]["default"] == 2
    assert signature["engine_names"] == {"step__n": "step.n"}
    assert inputs["pairs"]["type"] == "pair"
    assert signature["outputs"]["table"]["type"] == "list"
    assert signature["outputs"]["pair"]["type"] == "pair"
    assert signature["wdl_version"] == "draft-2"

    with pytest.raises(wdl.DescriptionUnusable) as refused:
        wdl.signature_from_description(
            {**described, "outputs": [{"name": "wf.o", "valueType": {"typeName": "Object"}}]}
        )
    assert refused.value.problems == ["output o: type Object can't be an operation type"]
