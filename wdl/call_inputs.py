"""Inputs of a workflow's calls that the workflow leaves unset, as operation inputs.

Cromwell's and miniwdl's inputs JSON take such inputs by their call-qualified name
(``{"wf.hello.name": "ada"}``, ``wf.sub.step.x`` through a sub-workflow call). Ferry's input names
are identifiers (``operations/spec.py``), so each one gets a safe name, its dots replaced by
``__`` (``hello.name`` → ``hello__name``; a clash with another input gets ``_2``, ``_3``…), and the
signature keeps ``engine_names`` (``{"hello__name": "hello.name"}``) for
:func:`wdl.inputs.build_inputs` to name it as the engines do.

Which ones:

* a required input of a task or sub-workflow that the call leaves unset is a **required**
  operation input (the workflow can't start without it, in either engine);
* an optional one (``T?``, or one with a default in the callee) is an **optional** operation
  input, its literal default shown — for WDL draft-2 and 1.0, where both engines take them; from
  WDL 1.1 on, only when the workflow's ``meta`` sets ``allowNestedInputs: true`` (or its
  ``hints`` ``allow_nested_inputs``), as the 1.1 specification says.

An optional call input whose type Ferry can't take as an input is left to the callee's default;
a required one is an error at the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import WDL

from wdl.errors import WdlError
from wdl.input_shapes import is_structured
from wdl.loading import LoadedWorkflow, body_nodes

NESTED_SEPARATOR = "__"


def nested_inputs_allowed(loaded: LoadedWorkflow) -> bool:
    """Whether the engines take the optional inputs of calls from the inputs JSON."""
    if loaded.wdl_version in ("draft-2", "1.0"):
        return True
    meta = loaded.workflow.meta or {}
    hints = getattr(loaded.workflow, "hints", None) or {}
    return _is_true(meta.get("allowNestedInputs")) or _is_true(hints.get("allow_nested_inputs"))


def _is_true(value: Any) -> bool:
    """``true`` in a meta section (a plain value, or miniwdl's literal expression)."""
    return value is True or (isinstance(value, WDL.Expr.Boolean) and value.value is True)


def safe_name(engine_name: str, taken: set[str]) -> str:
    """``call.input`` as an identifier no other input has."""
    base = engine_name.replace(".", NESTED_SEPARATOR)
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


def _description(loaded: LoadedWorkflow, engine_name: str, describe: Callable[[Any], str]) -> str:
    call_name, _, input_name = engine_name.partition(".")
    calls = {
        call.name: call for call in body_nodes(getattr(loaded.workflow, "body", []), WDL.Tree.Call)
    }
    call = calls.get(call_name)
    callee = call.callee if call is not None else None
    meta = (getattr(callee, "parameter_meta", None) or {}).get(input_name)
    own = describe(meta) if meta is not None else ""
    where = f"input {input_name} of call {call_name} ({engine_name} in the engines' inputs)"
    return f"{own} — {where}" if own else where


def call_inputs(
    loaded: LoadedWorkflow,
    taken: set[str],
    errors: list[WdlError],
    *,
    input_type: Callable[[WDL.Type.Base], dict[str, Any] | None],
    literal_default: Callable[[WDL.Tree.Decl], tuple[bool, Any]],
    describe: Callable[[Any], str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(inputs, engine_names)``: the call inputs the workflow leaves unset, as operation inputs
    keyed by their safe names, and each safe name's call-qualified name."""
    required = {binding.name for binding in loaded.workflow.required_inputs}
    calls = {
        call.name: call for call in body_nodes(getattr(loaded.workflow, "body", []), WDL.Tree.Call)
    }
    optional_too = nested_inputs_allowed(loaded)
    inputs: dict[str, Any] = {}
    engine_names: dict[str, str] = {}
    for binding in loaded.workflow.available_inputs:
        engine_name = binding.name
        if "." not in engine_name:
            continue  # the workflow's own input
        decl = binding.value
        is_required = engine_name in required
        if not is_required and not optional_too:
            continue
        typed = input_type(decl.type)
        if typed is None:
            if is_required:
                call = calls.get(engine_name.partition(".")[0])
                errors.append(
                    loaded.error_at(
                        call.pos if call is not None else loaded.workflow.pos,
                        f"call {engine_name.partition('.')[0]} leaves its required input "
                        f"{engine_name.partition('.')[2]} unset, and its type "
                        f"{str(decl.type).rstrip('?')} can't be an operation input: set it in "
                        "the call",
                    )
                )
            continue
        default = None
        if decl.expr is not None and typed["type"] != "file" and not is_structured(typed):
            try:
                _, default = literal_default(decl)
            except WDL.Error.EvalError:
                default = None  # the engine evaluates (and reports) it
        name = safe_name(engine_name, taken)
        taken.add(name)
        engine_names[name] = engine_name
        inputs[name] = {
            **typed,
            "description": _description(loaded, engine_name, describe),
            "required": is_required,
            "default": default,
        }
    return inputs, engine_names


def call_outputs(outputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(outputs, output_names)``: draft-2 outputs named by their call (``output {
    hello.salutation }``, ``hello.*``: the engines report them as ``wf.hello.salutation``)
    renamed like call inputs (``hello__salutation``), and each new name's engine name."""
    taken = {name for name in outputs if "." not in name}
    renamed: dict[str, Any] = {}
    output_names: dict[str, str] = {}
    for name, spec in outputs.items():
        if "." in name:
            safe = safe_name(name, taken)
            taken.add(safe)
            output_names[safe] = name
            name = safe
        renamed[name] = spec
    return renamed, output_names
