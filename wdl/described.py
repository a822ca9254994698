"""An operation signature from what Cromwell's describe says of a document miniwdl refuses.

Cromwell accepts a few documents miniwdl refuses (a draft-2 declaration named ``left``, names
Cromwell lets collide…). Such a workflow can still be an operation run only on Cromwell; its
inputs and outputs then come from ``POST /api/womtool/v1/describe``'s answer instead of
miniwdl's tree::

    {"valid": true, "name": "wf",
     "inputs": [{"name": "wf.reads", "valueType": {"typeName": "File"}, "optional": false,
                 "default": null, "typeDisplayName": "File"}, ...],
     "outputs": [{"name": "wf.count", "valueType": {"typeName": "Int"}, ...}]}

Each ``valueType`` becomes the miniwdl type it names and is mapped to Ferry's spec exactly as
:mod:`wdl.signature` maps a declaration (so the same types are supported). Input names keep
what follows the workflow's name; an input of a call (``wf.hello.name``) is named
``hello__name`` with ``engine_names`` (as :mod:`wdl.call_inputs` does), an output named by its
call likewise with ``output_names``. ``optional`` inputs are not required; a ``default`` is kept
when it is a literal (a number, ``true``/``false``, a quoted string without placeholders), else
the engine computes it. Plain Python: nothing here imports Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import WDL

from wdl.call_inputs import call_outputs, safe_name
from wdl.input_shapes import is_structured
from wdl.signature import input_type, output_type

_SIMPLE: dict[str, type[WDL.Type.Base]] = {
    "File": WDL.Type.File,
    "String": WDL.Type.String,
    "Int": WDL.Type.Int,
    "Float": WDL.Type.Float,
    "Boolean": WDL.Type.Boolean,
    "Directory": WDL.Type.Directory,
}
_LITERAL_RE = re.compile(r'^(-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|"[^"\\$~]*")$')


class DescriptionUnusable(Exception):
    """The description can't be an operation signature; ``problems`` says why (one per item)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def wdl_type(value_type: Any, where: str) -> WDL.Type.Base:
    """The miniwdl type a describe ``valueType`` names; DescriptionUnusable when it names none.
    Draft-2's ``Object`` (no fields) and any unknown type are refused here."""
    if not isinstance(value_type, Mapping):
        raise DescriptionUnusable([f"{where}: no valueType"])
    name = value_type.get("typeName")
    if name in _SIMPLE:
        return _SIMPLE[name]()
    if name == "Optional":
        return wdl_type(value_type.get("optionalType"), where).copy(optional=True)
    if name == "Array":
        return WDL.Type.Array(wdl_type(value_type.get("arrayType"), where))
    if name == "Map":
        types = value_type.get("mapType") or {}
        return WDL.Type.Map(
            (wdl_type(types.get("keyType"), where), wdl_type(types.get("valueType"), where))
        )
    if name == "Pair":
        left, right = _pair_sides(value_type, where)
        return WDL.Type.Pair(wdl_type(left, where), wdl_type(right, where))
    if name == "Object" and value_type.get("objectFieldTypes"):
        return _struct(value_type["objectFieldTypes"], where)
    raise DescriptionUnusable([f"{where}: type {name or '?'} can't be an operation type"])


def _pair_sides(value_type: Mapping[str, Any], where: str) -> tuple[Any, Any]:
    """The two sides of a Pair in any of the shapes Cromwell's API description shows
    (``pairType: {leftType, rightType}``, ``tupleTypes: [l, r]``, ``pairTypes: [{leftType: [l]},
    {rightType: [r]}]``)."""
    pair = value_type.get("pairType")
    if isinstance(pair, Mapping):
        return pair.get("leftType"), pair.get("rightType")
    tuple_types = value_type.get("tupleTypes")
    if isinstance(tuple_types, list) and len(tuple_types) == 2:
        return tuple_types[0], tuple_types[1]
    sides: dict[str, Any] = {}
    for item in value_type.get("pairTypes") or []:
        for key in ("leftType", "rightType"):
            if isinstance(item, Mapping) and key in item:
                value = item[key]
                sides[key] = value[0] if isinstance(value, list) and value else value
    if "leftType" in sides and "rightType" in sides:
        return sides["leftType"], sides["rightType"]
    raise DescriptionUnusable([f"{where}: a Pair without its two types"])


def _struct(fields: Any, where: str) -> WDL.Type.StructInstance:
    members: dict[str, WDL.Type.Base] = {}
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, Mapping) and isinstance(field.get("fieldName"), str):
            members[field["fieldName"]] = wdl_type(field.get("fieldType"), where)
    struct = WDL.Type.StructInstance("Object")
    struct.members = members
    return struct


def literal_default(text: Any) -> Any:
    """A describe ``default`` (the expression's text) as JSON when it is a literal, else None."""
    if not isinstance(text, str) or not _LITERAL_RE.match(text.strip()):
        return None
    return json.loads(text.strip())


def _local_name(name: Any, workflow_name: str) -> str:
    text = str(name or "")
    return text.removeprefix(f"{workflow_name}.") if workflow_name else text


def _inputs(
    described: Mapping[str, Any], workflow_name: str, problems: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    inputs: dict[str, Any] = {}
    engine_names: dict[str, str] = {}
    entries = [e for e in described.get("inputs") or [] if isinstance(e, Mapping)]
    taken = {_local_name(e.get("name"), workflow_name) for e in entries}
    for entry in entries:
        name = _local_name(entry.get("name"), workflow_name)
        optional = bool(entry.get("optional"))
        try:
            typed = input_type(wdl_type(entry.get("valueType"), f"input {name}"))
        except DescriptionUnusable as exc:
            if not optional:
                problems += exc.problems
            continue  # an optional input Ferry can't take is left to the workflow
        if typed is None:
            if not optional:
                problems.append(f"input {name}: type {entry.get('typeDisplayName')} can't be one")
            continue
        if "." in name:
            safe = safe_name(name, taken)
            taken.add(safe)
            engine_names[safe] = name
            name = safe
        structured = typed["type"] == "file" or is_structured(typed)
        inputs[name] = {
            **typed,
            "description": "",
            "required": not optional,
            "default": None if structured else literal_default(entry.get("default")),
        }
    return inputs, engine_names


def _outputs(
    described: Mapping[str, Any], workflow_name: str, problems: list[str]
) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for entry in described.get("outputs") or []:
        if not isinstance(entry, Mapping):
            continue
        name = _local_name(entry.get("name"), workflow_name)
        try:
            declared = wdl_type(entry.get("valueType"), f"output {name}")
        except DescriptionUnusable as exc:
            problems += exc.problems
            continue
        shape = output_type(declared)
        if shape is None:
            problems.append(f"output {name}: type {str(declared).rstrip('?')} can't be one")
            continue
        outputs[name] = {**shape, "description": "", "required": not declared.optional}
    return outputs


def signature_from_description(described: Mapping[str, Any]) -> dict[str, Any]:
    """The signature (as :func:`wdl.derive_signature` returns it) of a described workflow;
    raise :class:`DescriptionUnusable` naming every input or output Ferry can't map."""
    workflow_name = str(described.get("name") or "")
    if not workflow_name:
        raise DescriptionUnusable(["the description names no workflow"])
    problems: list[str] = []
    inputs, engine_names = _inputs(described, workflow_name, problems)
    outputs, output_names = call_outputs(_outputs(described, workflow_name, problems))
    if problems:
        raise DescriptionUnusable(problems)
    descriptor = described.get("submittedDescriptorType") or {}
    meta = described.get("meta") or {}
    return {
        "workflow_name": workflow_name,
        "wdl_version": str(descriptor.get("descriptorTypeVersion") or "draft-2"),
        "description": str(meta.get("description") or "") if isinstance(meta, Mapping) else "",
        "inputs": inputs,
        "outputs": outputs,
        "engine_names": engine_names,
        "output_names": output_names,
    }
