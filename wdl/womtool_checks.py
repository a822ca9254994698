"""Rules Cromwell's womtool applies that miniwdl doesn't: warnings for a workflow miniwdl accepts.

Cromwell's own tests list the documents womtool refuses (``womtool/src/test/resources/validate/
**/invalid``); of those, miniwdl accepts five, refused by three rules that miniwdl's tree shows
cheaply. Each is reported as a warning at its place (an operation is still added: miniwdl runs
it; a Cromwell server refuses its jobs):

* **mixed leading whitespace in a command** (WDL 1.0 and later): womtool refuses a command
  whose lines are indented with tabs on some and spaces on others, or both on one line
  ("Cannot mix leading whitespace characters in command");
* **a declaration named like a type** (WDL 1.0 and later: ``Int Boolean = 5``): womtool's
  parser takes ``Boolean``, ``Int``… as keywords ("Expected identifier");
* **a call setting a value its callee computes** (draft-2): womtool takes a declaration whose
  value refers to other values (``Int y = x``) as an intermediate value, not an input ("Call
  supplied an unexpected input"); miniwdl lets the call override it.

Not covered: womtool's checks of an inputs JSON (Ferry builds that JSON itself), and any rule
not in that list (see docs/wdl-corpus.md). Plain Python: nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import WDL

from wdl.errors import WdlError
from wdl.loading import LoadedWorkflow, body_nodes

TYPE_KEYWORDS = frozenset(
    {"Array", "Boolean", "Directory", "File", "Float", "Int", "Map", "Object", "Pair", "String"}
)


def _leading_whitespace_kinds(command: WDL.Expr.String) -> list[str]:
    """The kinds of leading whitespace (``" "``, ``"\\t"``) of the command's lines, in order
    of first use."""
    text = "".join(part if isinstance(part, str) else "x" for part in command.parts)
    kinds: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        for char in indent:
            if char not in kinds:
                kinds.append(char)
    return kinds


def _declarations(loaded: LoadedWorkflow) -> Iterator[WDL.Tree.Decl]:
    document = loaded.document
    for task in document.tasks:
        yield from task.inputs or []
        yield from task.postinputs
        yield from task.outputs
    workflow = document.workflow
    if workflow is not None:
        yield from workflow.inputs or []
        yield from body_nodes(workflow.body, WDL.Tree.Decl)
        yield from workflow.outputs or []


def _refers_to_values(expr: WDL.Expr.Base) -> bool:
    if isinstance(expr, WDL.Expr.Ident):
        return True
    return any(_refers_to_values(child) for child in expr.children)  # type: ignore[arg-type]


def _callee_declarations(call: WDL.Tree.Call) -> dict[str, WDL.Tree.Decl]:
    callee = call.callee
    if isinstance(callee, WDL.Tree.Task):
        nodes: list[Any] = [*(callee.inputs or []), *callee.postinputs]
    elif isinstance(callee, WDL.Tree.Workflow):
        nodes = [*(callee.inputs or []), *body_nodes(callee.body, WDL.Tree.Decl)]
    else:
        return {}
    return {node.name: node for node in nodes if isinstance(node, WDL.Tree.Decl)}


def _command_warnings(loaded: LoadedWorkflow) -> Iterator[WdlError]:
    for task in loaded.document.tasks:
        kinds = _leading_whitespace_kinds(task.command)
        if len(kinds) > 1:
            shown = ", ".join(repr(kind).replace("'", '"') for kind in kinds)
            yield loaded.error_at(
                task.command.pos,
                f"womtool refuses this command of task {task.name}: its lines are indented "
                f"with both tabs and spaces ({shown}); indent with one kind only",
            )


def _name_warnings(loaded: LoadedWorkflow) -> Iterator[WdlError]:
    for decl in _declarations(loaded):
        if decl.name in TYPE_KEYWORDS:
            yield loaded.error_at(
                decl.pos,
                f"womtool refuses a declaration named {decl.name}, a type's name (a keyword "
                "for Cromwell); rename it",
            )


def _call_input_warnings(loaded: LoadedWorkflow) -> Iterator[WdlError]:
    workflow = loaded.document.workflow
    if workflow is None:
        return
    for call in body_nodes(workflow.body, WDL.Tree.Call):
        declared = _callee_declarations(call)
        for name in call.inputs:
            decl = declared.get(name)
            if decl is not None and decl.expr is not None and _refers_to_values(decl.expr):
                yield loaded.error_at(
                    call.inputs[name].pos,
                    f"womtool refuses this call's input {name}: {call.callee_id[-1]} computes "
                    f"it from other values (an intermediate value for Cromwell, not an input); "
                    "make it an optional input the callee uses with select_first",
                )


def womtool_warnings(loaded: LoadedWorkflow) -> list[WdlError]:
    """Where womtool would refuse what miniwdl accepted (see the module's docstring)."""
    found: list[WdlError] = []
    if loaded.wdl_version == "draft-2":
        found += _call_input_warnings(loaded)
    else:
        found += _command_warnings(loaded)
        found += _name_warnings(loaded)
    return sorted(found, key=lambda e: (e["file"], e["line"], e["column"]))
