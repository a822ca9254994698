"""WebMEV hands a sample/gene set to a Cromwell workflow as its ids: an ``Array[String]`` with a
list converter (``ObservationSetListConverter``), one comma-joined ``String`` with a CSV one —
as mev-sctk-mast's ``SctkMastDge.expSamples`` (``Array[String]``) takes it."""

from __future__ import annotations

from typing import Any

import pytest

import wdl
from operations.webmev_cromwell import exposure_problems

SET = {"elements": [{"id": "s1", "attributes": {}}, {"id": "s4", "attributes": {}}]}


def spec_input(render: str) -> dict[str, Any]:
    return {
        "type": "observation_set",
        "render": render,
        "wdl_input": "Dge.expSamples",
        "required": True,
        "default": None,
    }


@pytest.mark.parametrize(
    ("render", "sent"),
    [("json", ["s1", "s4"]), ("csv", "s1,s4")],
)
def test_a_set_reaches_the_engine_as_its_ids(render: str, sent: Any) -> None:
    signature = {"inputs": {"expSamples": spec_input(render)}}
    assert wdl.build_inputs("Dge", signature, {"expSamples": SET}, str) == {"Dge.expSamples": sent}


@pytest.mark.parametrize(
    ("render", "wdl_kind", "fits"),
    [
        ("json", "list", True),
        ("csv", "string", True),
        ("json", "string", False),
        ("csv", "list", False),
    ],
)
def test_a_set_input_fits_the_wdl_type_its_converter_gives(
    render: str, wdl_kind: str, fits: bool
) -> None:
    spec = {"inputs": {"expSamples": spec_input(render)}, "outputs": {}}
    target: dict[str, Any] = {"type": wdl_kind, "required": True}
    if wdl_kind == "list":
        target["items"] = {"type": "string"}
    problems = exposure_problems(spec, {"inputs": {"expSamples": target}, "outputs": {}}, "Dge")
    assert (problems == []) is fits, problems
    if not fits:
        assert problems[0]["path"] == '$.inputs["Dge.expSamples"].spec'
