"""The operation signature of a workflow: its inputs and outputs in Ferry's normalized spec shape
(see ``operations/spec.py``).

Inputs are the workflow's own inputs: the declarations of its ``input {}`` section (WDL 1.0+), or
for draft-2 the top-level declarations without a value or with a literal one; and the inputs of
calls that the workflow leaves unset, named ``call__input`` (see ``wdl/call_inputs.py``; the
signature's ``engine_names`` maps them to ``call.input``). Types map as follows:

==========================  ==============================================================
WDL                          Ferry input
==========================  ==============================================================
``File``                     ``file`` (every file type allowed, ``many`` false)
``Array[File]``              ``file`` with ``many`` true
``Int`` / ``Float``          ``integer`` / ``float`` (no bounds)
``String`` / ``Boolean``     ``string`` (no pattern) / ``boolean``
``Array[X]`` (X a scalar)    ``list`` of X
==========================  ==============================================================

``Map``, ``Pair``, structs, arrays of arrays and optional items keep their structure (see
``wdl/input_shapes.py``; their default is the workflow's own, not shown); ``Directory``,
``Object`` and maps keyed by ``File`` or a compound type are reported as unsupported, at the
declaration. ``X?`` and declarations with a value are not required; the value becomes the ``default`` when it is a literal (a number, string without
placeholders, boolean, or array of them), and ``None`` otherwise (the workflow computes it).

Outputs are the workflow's ``output {}`` section (none without one), named without the workflow
prefix; draft-2 outputs named by their call (``hello.salutation``, or each of ``hello.*``) are
named ``hello__salutation`` (the signature's ``output_names`` maps them back). Their structure
is kept (see ``wdl/outputs.py``): ``File`` → ``file``; scalars as above; ``Array[X]`` →
``list`` with ``items`` X; ``Map[K, X]`` → ``map`` with ``values`` X (keys as the engines'
JSON gives them: strings);
``Pair[X, Y]`` → ``pair`` with ``left``/``right``; a struct → ``struct`` with ``members``; at any
depth (``Array[Array[File]]``, ``Map[String, Array[File]]``…). ``Directory``, ``Object`` and maps
keyed by ``File`` or a compound type are reported as unsupported, at the declaration. Output files
get the file type ``binary`` unless metadata says otherwise. ``X?`` outputs are not required.

Descriptions come from the workflow's ``meta``/``parameter_meta`` and can be overridden by
metadata (:func:`merge_metadata`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import WDL

from wdl.call_inputs import call_inputs, call_outputs
from wdl.errors import MetadataInvalid, WdlError, WorkflowInvalid
from wdl.input_shapes import MAP_KEYS_WHY, input_file_nodes, input_shape, is_structured
from wdl.loading import LoadedWorkflow
from wdl.outputs import file_shapes

FILE_TYPES = ("table", "json", "text", "binary")  # the same as operations.spec.FILE_TYPES
DEFAULT_OUTPUT_FILE_TYPE = "binary"
_SUPPORTED_INPUTS = (
    "File, Int, Float, String, Boolean, and Arrays, Maps (keyed by a scalar), Pairs and structs "
    "of them"
)
_SUPPORTED_OUTPUTS = (
    "File, Int, Float, String, Boolean, and Arrays, Maps (keyed by a scalar), Pairs and structs "
    "of them"
)


def _scalar(wdl_type: WDL.Type.Base) -> dict[str, Any] | None:
    kind = type(wdl_type)
    if kind is WDL.Type.Int:
        return {"type": "integer", "min": None, "max": None}
    if kind is WDL.Type.Float:
        return {"type": "float", "min": None, "max": None}
    if kind is WDL.Type.String:
        return {"type": "string", "pattern": None}
    if kind is WDL.Type.Boolean:
        return {"type": "boolean"}
    return None


def input_type(wdl_type: WDL.Type.Base) -> dict[str, Any] | None:
    """The typed part of a Ferry input for a WDL type; ``None`` when it has none."""
    if isinstance(wdl_type, WDL.Type.File):
        return {"type": "file", "file_types": list(FILE_TYPES), "many": False}
    if isinstance(wdl_type, WDL.Type.Array):
        item = wdl_type.item_type
        if isinstance(item, WDL.Type.File) and not item.optional:
            return {"type": "file", "file_types": list(FILE_TYPES), "many": True}
        scalar = _scalar(item) if not item.optional else None  # else a structured list
        return {"type": "list", "items": scalar} if scalar else input_shape(wdl_type)[0]
    return _scalar(wdl_type) or input_shape(wdl_type)[0]


_Shaped = tuple[dict[str, Any] | None, str]


def _output_shape(wdl_type: WDL.Type.Base) -> _Shaped:
    """``(shape, "")``, or ``(None, what is not supported)``."""
    if isinstance(wdl_type, WDL.Type.File):
        return {"type": "file", "file_type": DEFAULT_OUTPUT_FILE_TYPE}, ""
    scalar = _scalar(wdl_type)
    if scalar is not None:
        return {"type": scalar["type"]}, ""
    if isinstance(wdl_type, WDL.Type.Array):
        items, why = _output_shape(wdl_type.item_type)
        return ({"type": "list", "items": items}, "") if items else (None, why)
    if isinstance(wdl_type, WDL.Type.Map):
        return _map_output_shape(wdl_type)
    if isinstance(wdl_type, WDL.Type.Pair):
        return _pair_output_shape(wdl_type)
    if isinstance(wdl_type, WDL.Type.StructInstance) and wdl_type.members is not None:
        return _struct_output_shape(wdl_type, wdl_type.members)
    return None, f"{_base_name(wdl_type)} is not"


def _map_output_shape(wdl_type: WDL.Type.Map) -> _Shaped:
    """A Map with scalar keys (the engines' JSON gives them as strings), its values of any
    supported type."""
    key_type, value_type = wdl_type.item_type
    if _scalar(key_type) is None:
        return None, MAP_KEYS_WHY.format(_base_name(key_type))
    values, why = _output_shape(value_type)
    return ({"type": "map", "values": values}, "") if values else (None, why)


def _pair_output_shape(wdl_type: WDL.Type.Pair) -> _Shaped:
    """A Pair whose both sides are of supported types."""
    left, why = _output_shape(wdl_type.left_type)
    right, why_right = _output_shape(wdl_type.right_type)
    if left is None or right is None:
        return None, why or why_right
    return {"type": "pair", "left": left, "right": right}, ""


def _struct_output_shape(
    wdl_type: WDL.Type.StructInstance, member_types: dict[str, WDL.Type.Base]
) -> _Shaped:
    """A struct whose every member is of a supported type (the first that is not is named)."""
    members: dict[str, Any] = {}
    for member, member_type in member_types.items():
        shape, why = _output_shape(member_type)
        if shape is None:
            return None, f"member {member} of {wdl_type.type_name}: {why}"
        members[member] = shape
    return {"type": "struct", "members": members}, ""


def output_type(wdl_type: WDL.Type.Base) -> dict[str, Any] | None:
    """The typed part of a Ferry output for a WDL type, its structure kept; ``None`` when it
    has none."""
    return _output_shape(wdl_type)[0]


def _base_name(wdl_type: WDL.Type.Base) -> str:
    return str(wdl_type).rstrip("?")


# --- defaults ---------------------------------------------------------------------------------


def _is_literal(expr: WDL.Expr.Base) -> bool:
    if isinstance(expr, WDL.Expr.Int | WDL.Expr.Float | WDL.Expr.Boolean | WDL.Expr.Null):
        return True
    if isinstance(expr, WDL.Expr.String):
        return all(isinstance(part, str) for part in expr.parts)
    if isinstance(expr, WDL.Expr.Array):
        return all(_is_literal(item) for item in expr.items)
    return False


def literal_default(decl: WDL.Tree.Decl) -> tuple[bool, Any]:
    """``(True, value)`` when the declaration's value is a literal (as JSON, coerced to the
    declared type); ``(False, None)`` when it is an expression the workflow evaluates.
    Raise :class:`WDL.Error.EvalError` when a literal doesn't fit the type."""
    expr = decl.expr
    if expr is None or not _is_literal(expr):
        return False, None
    # A literal calls no function; the standard library is only there to satisfy the signature.
    value = expr.eval(WDL.Env.Bindings(), stdlib=WDL.StdLib.Base("1.0"))
    return True, value.coerce(decl.type).json


# --- descriptions -----------------------------------------------------------------------------


def _description(meta: Any) -> str:
    if isinstance(meta, str):
        return meta
    if isinstance(meta, Mapping):
        for key in ("description", "help"):
            if isinstance(meta.get(key), str):
                return str(meta[key])
    return ""


# --- inputs and outputs -----------------------------------------------------------------------


def _declared_inputs(loaded: LoadedWorkflow) -> list[WDL.Tree.Decl]:
    workflow = loaded.workflow
    if workflow.inputs is not None:
        return list(workflow.inputs)
    if loaded.document.wdl_version is not None:
        return []
    # draft-2: every top-level declaration can be set from outside; computed ones are internal.
    body = workflow.body if isinstance(workflow, WDL.Tree.Workflow) else workflow.postinputs
    return [
        node
        for node in body
        if isinstance(node, WDL.Tree.Decl) and (node.expr is None or _is_literal(node.expr))
    ]


def _inputs(loaded: LoadedWorkflow, errors: list[WdlError]) -> dict[str, Any]:
    parameter_meta = loaded.workflow.parameter_meta or {}
    inputs: dict[str, Any] = {}
    for decl in _declared_inputs(loaded):
        typed = input_type(decl.type)
        if typed is None:
            errors.append(
                loaded.error_at(
                    decl.pos,
                    f"input {decl.name}: type {_base_name(decl.type)} is not supported as an "
                    f"operation input (use {_SUPPORTED_INPUTS})",
                )
            )
            continue
        default = None
        if decl.expr is not None and typed["type"] != "file" and not is_structured(typed):
            try:
                _, default = literal_default(decl)
            except WDL.Error.EvalError as exc:
                errors.append(
                    loaded.error_at(
                        decl.expr.pos,
                        f"input {decl.name}: the default value is not a valid "
                        f"{_base_name(decl.type)} ({exc})",
                    )
                )
                continue
        inputs[decl.name] = {
            **typed,
            "description": _description(parameter_meta.get(decl.name)),
            "required": decl.expr is None and not decl.type.optional,
            "default": default,
        }
    return inputs


def _outputs(loaded: LoadedWorkflow, errors: list[WdlError]) -> dict[str, Any]:
    parameter_meta = loaded.workflow.parameter_meta or {}
    outputs: dict[str, Any] = {}
    for decl in loaded.workflow.outputs or []:
        typed, why = _output_shape(decl.type)
        if typed is None:
            name = _base_name(decl.type)
            inner = f"; {why}" if why and why != f"{name} is not" else ""
            errors.append(
                loaded.error_at(
                    decl.pos,
                    f"output {decl.name}: type {name} is not supported as an operation output"
                    f"{inner} (use {_SUPPORTED_OUTPUTS})",
                )
            )
            continue
        outputs[decl.name] = {
            **typed,
            "description": _description(parameter_meta.get(decl.name)),
            "required": not decl.type.optional,
        }
    return outputs


def derive_signature(loaded: LoadedWorkflow) -> dict[str, Any]:
    """``{"workflow_name", "wdl_version", "description", "inputs", "outputs"}`` for the loaded
    workflow; raise :class:`WorkflowInvalid` listing every input/output Ferry can't map."""
    errors: list[WdlError] = []
    inputs = _inputs(loaded, errors)
    outputs, output_names = call_outputs(_outputs(loaded, errors))
    nested, engine_names = call_inputs(
        loaded,
        set(inputs),
        errors,
        input_type=input_type,
        literal_default=literal_default,
        describe=_description,
    )
    if errors:
        raise WorkflowInvalid(errors)
    return {
        "workflow_name": loaded.workflow_name,
        "wdl_version": loaded.wdl_version,
        "description": _description(loaded.workflow.meta or {}),
        "inputs": {**inputs, **nested},
        "outputs": outputs,
        "engine_names": engine_names,
        "output_names": output_names,
    }


# --- metadata ---------------------------------------------------------------------------------

_INPUT_META_KEYS = {"description", "file_types"}
_OUTPUT_META_KEYS = {"description", "file_type"}


def _path(*parts: str) -> str:
    return "$" + "".join(f".{part}" for part in parts)


def _merge_input(spec: dict[str, Any], meta: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    problems = []
    files = list(input_file_nodes(spec))  # the input itself, or its files at any depth
    for key, value in meta.items():
        path = _path("inputs", name, str(key))
        if key not in _INPUT_META_KEYS:
            problems.append(
                {"path": path, "message": f"unknown key; known: {sorted(_INPUT_META_KEYS)}"}
            )
        elif key == "description":
            if isinstance(value, str):
                spec["description"] = value
            else:
                problems.append({"path": path, "message": "must be a string"})
        elif not files:
            problems.append({"path": path, "message": f"input {name} takes no files"})
        elif (
            not isinstance(value, list)
            or not value
            or any(item not in FILE_TYPES for item in value)
        ):
            problems.append(
                {"path": path, "message": f"must be a non-empty list drawn from {list(FILE_TYPES)}"}
            )
        else:
            for file_spec in files:
                file_spec["file_types"] = [t for t in FILE_TYPES if t in value]
    return problems


def _merge_output(spec: dict[str, Any], meta: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    problems = []
    files = list(file_shapes(spec))
    for key, value in meta.items():
        path = _path("outputs", name, str(key))
        if key not in _OUTPUT_META_KEYS:
            problems.append(
                {"path": path, "message": f"unknown key; known: {sorted(_OUTPUT_META_KEYS)}"}
            )
        elif key == "description":
            if isinstance(value, str):
                spec["description"] = value
            else:
                problems.append({"path": path, "message": "must be a string"})
        elif not files:
            problems.append({"path": path, "message": f"output {name} holds no files"})
        elif value not in FILE_TYPES:
            problems.append({"path": path, "message": f"must be one of {list(FILE_TYPES)}"})
        else:
            for file_spec in files:  # every file of the output, at any depth
                file_spec["file_type"] = value
    return problems


def _merge_section(
    signature: dict[str, Any], metadata: Mapping[str, Any], section: str
) -> list[dict[str, str]]:
    entries = metadata.get(section, {})
    if not isinstance(entries, Mapping):
        return [{"path": _path(section), "message": "must be an object keyed by name"}]
    problems: list[dict[str, str]] = []
    known = signature[section]
    what = section[:-1]
    for name, meta in entries.items():
        path = _path(section, str(name))
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            problems.append(
                {
                    "path": path,
                    "message": f"the workflow has no {what} {name!r} (its {section}: {names})",
                }
            )
        elif not isinstance(meta, Mapping):
            problems.append({"path": path, "message": "must be an object"})
        elif section == "inputs":
            problems += _merge_input(known[name], meta, str(name))
        else:
            problems += _merge_output(known[name], meta, str(name))
    return problems


def merge_metadata(signature: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``signature`` with metadata's descriptions and file types applied::

        {"description": "...",
         "inputs": {"reads": {"description": "...", "file_types": ["text"]}},
         "outputs": {"report": {"description": "...", "file_type": "json"}}}

    Raise :class:`MetadataInvalid` when it names unknown inputs/outputs or keys, or sets file
    types on what takes or makes no files.
    """
    merged = copy.deepcopy(dict(signature))
    problems: list[dict[str, str]] = []
    for key in metadata:
        if key not in ("description", "inputs", "outputs"):
            problems.append(
                {
                    "path": _path(str(key)),
                    "message": "unknown key; known: description, inputs, outputs",
                }
            )
    if "description" in metadata:
        if isinstance(metadata["description"], str):
            merged["description"] = metadata["description"]
        else:
            problems.append({"path": _path("description"), "message": "must be a string"})
    problems += _merge_section(merged, metadata, "inputs")
    problems += _merge_section(merged, metadata, "outputs")
    if problems:
        raise MetadataInvalid(problems)
    return merged


def workflow_signature(
    loaded: LoadedWorkflow, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`derive_signature`, then :func:`merge_metadata` when metadata is given."""
    signature = derive_signature(loaded)
    return merge_metadata(signature, metadata) if metadata else signature
