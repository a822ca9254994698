"""WDL through miniwdl: load and check a document and its inputs, describe it like womtool,
and walk JSON values by WDL type to find the files in them."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import WDL
from WDL import Type


class WorkflowProblem(Exception):
    """The document or its inputs are not acceptable; ``messages`` says why."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class LoadedWorkflow:
    document: WDL.Tree.Document
    target: WDL.Tree.Workflow | WDL.Tree.Task
    name: str

    @property
    def input_decls(self) -> dict[str, WDL.Tree.Decl]:
        return {binding.name: binding.value for binding in self.target.available_inputs}

    @property
    def output_types(self) -> dict[str, Type.Base]:
        """Output types by the names miniwdl and Cromwell report (``wf.out``)."""
        return {
            f"{self.name}.{binding.name}": binding.value
            for binding in self.target.effective_outputs
        }


def error_messages(error: BaseException) -> list[str]:
    """Readable messages of a miniwdl load/validation error, with positions."""
    if isinstance(error, WDL.Error.MultipleValidationErrors):
        return [text for inner in error.exceptions for text in error_messages(inner)]
    text = str(error) or type(error).__name__
    if isinstance(error, WDL.Error.ImportError) and error.__cause__ is not None:
        text = f"{text}: {error.__cause__}"
    position = getattr(error, "pos", None)
    if position is not None:
        text = f"{text} (line {position.line}, column {position.column})"
    return [text]


def load_workflow(main_wdl: Path, import_dirs: list[Path] | None = None) -> LoadedWorkflow:
    """Load and typecheck ``main_wdl`` (imports relative to it or ``import_dirs``)."""
    try:
        document = WDL.load(str(main_wdl), path=[str(d) for d in import_dirs or []])
    except Exception as error:
        raise WorkflowProblem(error_messages(error)) from error
    if document.workflow is not None:
        return LoadedWorkflow(document, document.workflow, document.workflow.name)
    if len(document.tasks) == 1:
        return LoadedWorkflow(document, document.tasks[0], document.tasks[0].name)
    raise WorkflowProblem(["the document has no workflow (and not exactly one task) to run"])


def load_workflow_text(source: str) -> LoadedWorkflow:
    """Load a document given as text (no imports besides absolute URIs)."""
    with tempfile.TemporaryDirectory(prefix="cromwell-wdl-") as folder:
        main = Path(folder) / "main.wdl"
        main.write_text(source)
        return load_workflow(main)


def _input_key(loaded: LoadedWorkflow, key: str) -> str:
    prefix = f"{loaded.name}."
    return key[len(prefix) :] if key.startswith(prefix) else key


def check_inputs(loaded: LoadedWorkflow, inputs: dict[str, Any]) -> None:
    """Raise WorkflowProblem unless ``inputs`` (Cromwell-style JSON) suit the workflow."""
    try:
        WDL.values_from_json(
            inputs,
            loaded.target.available_inputs,
            loaded.target.required_inputs,
            namespace=loaded.name,
        )
    except WDL.Error.InputError as error:
        raise WorkflowProblem([str(error)]) from error
    except Exception as error:
        raise WorkflowProblem(error_messages(error)) from error


def input_type(loaded: LoadedWorkflow, key: str) -> Type.Base | None:
    decl = loaded.input_decls.get(_input_key(loaded, key))
    return None if decl is None else decl.type


FileMapper = Callable[[str, bool], Any]  # (path or URI, is_directory) -> replacement


def map_files(value: Any, wdl_type: Type.Base | None, mapper: FileMapper) -> Any:
    """Copy of a JSON ``value`` of ``wdl_type`` with every File/Directory string mapped."""
    if value is None or wdl_type is None:
        return value
    if isinstance(wdl_type, Type.File | Type.Directory):
        is_directory = isinstance(wdl_type, Type.Directory)
        return mapper(value, is_directory) if isinstance(value, str) else value
    if isinstance(wdl_type, Type.Array) and isinstance(value, list):
        return [map_files(item, wdl_type.item_type, mapper) for item in value]
    if isinstance(wdl_type, Type.Map) and isinstance(value, dict):
        return {key: map_files(item, wdl_type.item_type[1], mapper) for key, item in value.items()}
    if isinstance(wdl_type, Type.Pair) and isinstance(value, dict):
        return {
            "left": map_files(value.get("left"), wdl_type.left_type, mapper),
            "right": map_files(value.get("right"), wdl_type.right_type, mapper),
        }
    if isinstance(wdl_type, Type.StructInstance) and isinstance(value, dict):
        members = wdl_type.members or {}
        return {key: map_files(item, members.get(key), mapper) for key, item in value.items()}
    return value


# -- womtool-like description ----------------------------------------------------------------


def value_type(wdl_type: Type.Base) -> dict[str, Any]:
    """Cromwell's ``ValueType`` object for a WDL type."""
    if wdl_type.optional:
        return {"typeName": "Optional", "optionalType": value_type(wdl_type.copy(optional=False))}
    if isinstance(wdl_type, Type.Array):
        return {"typeName": "Array", "arrayType": value_type(wdl_type.item_type)}
    if isinstance(wdl_type, Type.Map):
        key_type, item_type = wdl_type.item_type
        return {
            "typeName": "Map",
            "mapType": {"keyType": value_type(key_type), "valueType": value_type(item_type)},
        }
    if isinstance(wdl_type, Type.Pair):
        return {
            "typeName": "Pair",
            "pairType": {
                "leftType": value_type(wdl_type.left_type),
                "rightType": value_type(wdl_type.right_type),
            },
        }
    if isinstance(wdl_type, Type.StructInstance):
        members = wdl_type.members or {}
        return {
            "typeName": "Object",
            "objectFieldTypes": [
                {"fieldName": name, "fieldType": value_type(member)}
                for name, member in members.items()
            ],
        }
    simple = {
        Type.File: "File",
        Type.Directory: "Directory",
        Type.String: "String",
        Type.Int: "Int",
        Type.Float: "Float",
        Type.Boolean: "Boolean",
    }
    for cls, name in simple.items():
        if isinstance(wdl_type, cls):
            return {"typeName": name}
    return {"typeName": "Object"}


def _describe_inputs(loaded: LoadedWorkflow) -> list[dict[str, Any]]:
    described = []
    for binding in loaded.target.available_inputs:
        decl = binding.value
        described.append(
            {
                "name": f"{loaded.name}.{binding.name}",
                "valueType": value_type(decl.type),
                "typeDisplayName": str(decl.type),
                "optional": decl.type.optional or decl.expr is not None,
                "default": None if decl.expr is None else str(decl.expr),
            }
        )
    return described


def _describe_outputs(loaded: LoadedWorkflow) -> list[dict[str, Any]]:
    return [
        {"name": name, "valueType": value_type(wdl_type), "typeDisplayName": str(wdl_type)}
        for name, wdl_type in loaded.output_types.items()
    ]


def _images(document: WDL.Tree.Document) -> list[str]:
    found = []
    for task in document.tasks:
        for key in ("docker", "container"):
            expr = task.runtime.get(key)
            literal = None if expr is None else expr.literal
            if literal is not None and isinstance(literal.value, str):
                found.append(literal.value)
    return sorted(set(found))


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def describe(source: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """What ``POST /api/womtool/v1/describe`` answers for ``source`` and optional inputs."""
    try:
        loaded = load_workflow_text(source)
    except WorkflowProblem as problem:
        return {
            "valid": False,
            "errors": problem.messages,
            "validWorkflow": False,
            "name": "",
            "inputs": [],
            "outputs": [],
            "images": [],
            "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": ""},
            "importedDescriptorTypes": [],
            "meta": {},
            "parameterMeta": {},
            "isRunnableWorkflow": False,
        }
    errors: list[str] = []
    if inputs is not None:
        try:
            check_inputs(loaded, inputs)
        except WorkflowProblem as problem:
            errors = problem.messages
    document = loaded.document
    return {
        "valid": not errors,
        "errors": errors,
        "validWorkflow": True,
        "name": loaded.name,
        "inputs": _describe_inputs(loaded),
        "outputs": _describe_outputs(loaded),
        "images": _images(document),
        "submittedDescriptorType": {
            "descriptorType": "WDL",
            "descriptorTypeVersion": document.wdl_version or "draft-2",
        },
        "importedDescriptorTypes": [],
        "meta": _plain_json(loaded.target.meta),
        "parameterMeta": _plain_json(loaded.target.parameter_meta),
        "isRunnableWorkflow": True,
    }
