"""Inputs of calls a workflow leaves unset are operation inputs (wdl/call_inputs.py), named
``call__input`` for Ferry and ``wf.call.input`` for the engines, as their inputs JSON takes them."""

from __future__ import annotations

from typing import Any

import pytest

import wdl

HELLO_DRAFT2 = """
task hello {
  String addressee
  command { echo "Hello ${addressee}!" }
  output { String salutation = read_string(stdout()) }
  runtime { docker: "ferry/busybox:latest" }
}

workflow wf_hello {
  call hello
  output { String greeting = hello.salutation }
}
"""

THREE_STEP = """
version 1.0

task ps {
  command <<< echo "a b c" >>>
  output { File procs = stdout() }
}

task count {
  input {
    File in_file
    String pattern
    Int? max_lines
    String flags = "-c"
    Int width = 2 * 3
  }
  command <<< grep ~{flags} '~{pattern}' ~{in_file} >>>
  output { Int found = read_int(stdout()) }
}

workflow three_step {
  input {
    Int rounds = 1
  }
  call ps
  scatter (i in range(rounds)) {
    call count { input: in_file = ps.procs }
  }
  output { Array[Int] found = count.found }
}
"""


def derive(source: str) -> dict[str, Any]:
    return wdl.derive_signature(wdl.load_workflow(wdl.bundle_from_text(source)))


def test_a_required_input_left_unset_in_a_draft2_call_is_a_required_input() -> None:
    signature = derive(HELLO_DRAFT2)
    assert signature["inputs"] == {
        "hello__addressee": {
            "type": "string",
            "pattern": None,
            "description": "input addressee of call hello (hello.addressee in the engines' inputs)",
            "required": True,
            "default": None,
        }
    }
    assert signature["engine_names"] == {"hello__addressee": "hello.addressee"}
    engine = wdl.build_inputs("wf_hello", signature, {"hello__addressee": "ada"}, str)
    assert engine == {"wf_hello.hello.addressee": "ada"}


def test_call_inputs_in_a_scatter_required_optional_and_defaulted() -> None:
    signature = derive(THREE_STEP)
    inputs = signature["inputs"]
    assert list(inputs) == [
        "rounds",
        "count__pattern",
        "count__max_lines",
        "count__flags",
        "count__width",
    ]
    assert (inputs["count__pattern"]["required"], inputs["count__pattern"]["default"]) == (
        True,
        None,
    )
    assert (inputs["count__max_lines"]["required"], inputs["count__max_lines"]["type"]) == (
        False,
        "integer",
    )
    assert (inputs["count__flags"]["required"], inputs["count__flags"]["default"]) == (False, "-c")
    assert (inputs["count__width"]["required"], inputs["count__width"]["default"]) == (False, None)
    # in_file is set in the call: not an input. The engines get call-qualified names.
    engine = wdl.build_inputs(
        "three_step", signature, {"count__pattern": "b", "count__max_lines": 3}, str
    )
    assert engine == {"three_step.count.pattern": "b", "three_step.count.max_lines": 3}
    with pytest.raises(ValueError, match="count__pattern"):
        wdl.build_inputs("three_step", signature, {}, str)


def test_an_operation_spec_keeps_the_engine_names_in_its_wdl_section() -> None:
    signature = derive(HELLO_DRAFT2)
    spec = {"inputs": signature["inputs"], "wdl": {"engine_names": signature["engine_names"]}}
    assert wdl.build_inputs("wf_hello", spec, {"hello__addressee": "x"}, str) == {
        "wf_hello.hello.addressee": "x"
    }


def test_a_safe_name_taken_by_a_workflow_input_gets_a_suffix() -> None:
    source = HELLO_DRAFT2.replace(
        "workflow wf_hello {", "workflow wf_hello {\n  String hello__addressee"
    )
    signature = derive(source)
    assert signature["engine_names"] == {"hello__addressee_2": "hello.addressee"}
    assert list(signature["inputs"]) == ["hello__addressee", "hello__addressee_2"]


NESTED_11 = """
version 1.1

task t {
  input {
    String who
    String greeting = "hi"
  }
  command <<< echo "~{greeting} ~{who}" >>>
  output { String said = read_string(stdout()) }
}

workflow w {
  META
  call t
  output { String said = t.said }
}
"""


@pytest.mark.parametrize(
    ("meta", "exposed"),
    [
        ("", ["t__who"]),
        ("meta { allowNestedInputs: false }", ["t__who"]),
        ("meta { allowNestedInputs: true }", ["t__who", "t__greeting"]),
    ],
)
def test_from_wdl_1_1_optional_call_inputs_need_allow_nested_inputs(
    meta: str, exposed: list[str]
) -> None:
    signature = derive(NESTED_11.replace("META", meta))
    assert list(signature["inputs"]) == exposed
    assert signature["inputs"]["t__who"]["required"] is True


def test_draft2_outputs_named_by_their_call_are_renamed_like_call_inputs() -> None:
    source = HELLO_DRAFT2.replace(
        "output { String greeting = hello.salutation }", "output { hello.salutation }"
    ).replace("call hello", "call hello\n  call hello as again")
    source = source.replace("output { hello.salutation }", "output { hello.salutation again.* }")
    signature = derive(source)
    assert list(signature["outputs"]) == ["hello__salutation", "again__salutation"]
    assert signature["output_names"] == {
        "hello__salutation": "hello.salutation",
        "again__salutation": "again.salutation",
    }
    assert signature["outputs"]["hello__salutation"]["type"] == "string"


def test_a_required_call_input_of_a_type_ferry_cant_take_is_an_error_at_the_call() -> None:
    source = """version development

task listing {
  input {
    Directory folder
  }
  command <<< ls '~{folder}' >>>
  output { String names = read_string(stdout()) }
}

workflow w {
  call listing
  output { String names = listing.names }
}
"""
    with pytest.raises(wdl.WorkflowInvalid) as caught:
        derive(source)
    (error,) = caught.value.errors
    assert (error["line"], error["column"]) == (12, 3)
    assert error["message"].startswith(
        "call listing leaves its required input folder unset, and its type Directory can't be "
        "an operation input"
    )


def test_a_draft2_document_of_one_task_takes_its_declarations_as_inputs() -> None:
    source = """
task count {
  File reads
  Int min = 2
  String label = "n: " + min
  command { wc -l < ${reads} }
  output { Int lines = read_int(stdout()) }
}
"""
    signature = derive(source)
    assert signature["workflow_name"] == "count"
    assert list(signature["inputs"]) == ["reads", "min"]  # label is computed
    assert signature["inputs"]["min"]["default"] == 2
    assert list(signature["outputs"]) == ["lines"]


def test_a_task_library_is_refused_saying_so_at_its_second_task() -> None:
    source = """version 1.0

task one {
  command <<< echo 1 >>>
}

task two {
  command <<< echo 2 >>>
}
"""
    with pytest.raises(wdl.WorkflowInvalid) as caught:
        wdl.load_workflow(wdl.bundle_from_text(source))
    (error,) = caught.value.errors
    assert (error["file"], error["line"], error["column"]) == ("main.wdl", 7, 1)
    assert error["message"].startswith(
        "main.wdl is a task library (2 tasks: one, two) with no workflow"
    )


def test_a_document_of_structs_only_is_refused() -> None:
    source = "version 1.0\n\nstruct Pt {\n  Int x\n}\n"
    with pytest.raises(wdl.WorkflowInvalid, match=r"no workflow and no task in main\.wdl"):
        wdl.load_workflow(wdl.bundle_from_text(source))


def test_metadata_file_types_reach_the_files_inside_a_structured_input() -> None:
    source = """version 1.0

struct Sample {
  String name
  File reads
}

workflow w {
  input {
    Sample sample
    Pair[String, Int] tag
  }
  output {
    String name = sample.name
  }
}
"""
    signature = derive(source)
    merged = wdl.merge_metadata(signature, {"inputs": {"sample": {"file_types": ["text"]}}})
    assert merged["inputs"]["sample"]["members"]["reads"]["file_types"] == ["text"]
    with pytest.raises(wdl.MetadataInvalid, match="input tag takes no files"):
        wdl.merge_metadata(signature, {"inputs": {"tag": {"file_types": ["text"]}}})
