"""The inputs JSON a WDL engine takes (``{"wf.name": value}``) from a job's validated inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wdl.input_shapes import map_files
from wdl.loading import LoadedWorkflow
from wdl.signature import derive_signature

_ELEMENT_TYPES = ("observation_set", "feature_set", "observation", "feature")


def _engine_value(spec: Mapping[str, Any], value: Any, file_location: Callable[[str], str]) -> Any:
    if spec.get("type") in _ELEMENT_TYPES and isinstance(value, Mapping):
        return _element_ids_value(spec, value)
    return map_files(spec, value, file_location)


def _element_ids_value(spec: Mapping[str, Any], value: Mapping[str, Any]) -> Any:
    """A sample/gene set (or one element) as a workflow takes it: the ids as an
    ``Array[String]`` (``render: "json"``, WebMEV's list converters) or comma-joined in one
    ``String`` (WebMEV's CSV converters, the default)."""
    elements = value.get("elements", [value])
    ids = [str(element["id"]) for element in elements]
    return ids if spec.get("render") == "json" else ",".join(ids)


def build_inputs(
    workflow_name: str,
    signature_or_loaded: Mapping[str, Any] | LoadedWorkflow,
    values: Mapping[str, Any],
    file_location: Callable[[str], str],
) -> dict[str, Any]:
    """``{"<workflow>.<input>": value}`` for every input given a value (``<workflow>.<call>.<input>``
    for an input of a call the workflow leaves unset; an input whose spec has ``wdl_input``, as
    WebMEV Cromwell operations' do, goes by that fully qualified name).

    ``values`` are a job's validated inputs; file inputs hold Ferry file references, replaced by
    what ``file_location(reference)`` returns (a local path for miniwdl, a bucket URI for
    Cromwell). Inputs without a value (or ``None``) are left out, so the workflow's own default
    applies. Integers given to ``Float`` inputs become floats. Raise :class:`ValueError` for an
    unknown input or a missing required one.
    """
    signature = (
        derive_signature(signature_or_loaded)
        if isinstance(signature_or_loaded, LoadedWorkflow)
        else signature_or_loaded
    )
    specs: Mapping[str, Any] = signature["inputs"]
    # Inputs of calls the workflow leaves unset: their call-qualified names (wdl/call_inputs.py),
    # in a signature or in an operation spec's "wdl" section.
    engine_names: Mapping[str, str] = signature.get("engine_names") or (
        signature.get("wdl") or {}
    ).get("engine_names", {})
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ValueError(f"unknown inputs for workflow {workflow_name}: {', '.join(unknown)}")
    engine_inputs: dict[str, Any] = {}
    for name, spec in specs.items():
        value = values.get(name)
        if value is None:
            if spec.get("required"):
                raise ValueError(f"input {name} of workflow {workflow_name} is required")
            continue
        key = spec.get("wdl_input") or f"{workflow_name}.{engine_names.get(name, name)}"
        engine_inputs[key] = _engine_value(spec, value, file_location)
    return engine_inputs
