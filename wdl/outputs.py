"""Read a workflow's outputs back: which values are files (to relocate) and which are plain."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import WDL


def _files_of_type(value: Any, wdl_type: WDL.Type.Base) -> Iterator[str]:
    if value is None:
        return
    if isinstance(wdl_type, WDL.Type.File):
        if isinstance(value, str):
            yield value
    elif isinstance(wdl_type, WDL.Type.Array) and isinstance(value, list):
        for item in value:
            yield from _files_of_type(item, wdl_type.item_type)
    elif isinstance(wdl_type, WDL.Type.Map) and isinstance(value, Mapping):
        key_type, value_type = wdl_type.item_type
        for key, item in value.items():
            yield from _files_of_type(key, key_type)
            yield from _files_of_type(item, value_type)
    elif isinstance(wdl_type, WDL.Type.Pair) and isinstance(value, Mapping):
        yield from _files_of_type(value.get("left"), wdl_type.left_type)
        yield from _files_of_type(value.get("right"), wdl_type.right_type)
    elif isinstance(wdl_type, WDL.Type.StructInstance) and isinstance(value, Mapping):
        for member, member_type in (wdl_type.members or {}).items():
            yield from _files_of_type(value.get(member), member_type)


def _files_of_spec(value: Any, spec: Mapping[str, Any]) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            yield from _files_of_spec(item, spec)
    elif isinstance(value, str) and is_file_output(spec):
        yield value


def flatten_output_files(value: Any, wdl_type: WDL.Type.Base | Mapping[str, Any]) -> list[str]:
    """Every file path/URI in an output value, in order, given its WDL type (``File``, arrays at
    any depth, ``Map``/``Pair``/struct members, optional ``None``) or its Ferry output spec
    (``file``, or ``list`` of ``file`` with nested lists flattened). ``Directory`` is not a file."""
    if isinstance(wdl_type, WDL.Type.Base):
        return list(_files_of_type(value, wdl_type))
    return list(_files_of_spec(value, wdl_type))


def is_file_output(spec: Mapping[str, Any]) -> bool:
    return spec.get("type") == "file" or (
        spec.get("type") == "list" and (spec.get("items") or {}).get("type") == "file"
    )


class OutputsIncomplete(ValueError):
    """The engine's outputs lack required outputs (``missing`` names them)."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"the workflow's outputs lack {', '.join(missing)}")


@dataclass
class WorkflowOutputs:
    """``files``: output name → file paths/URIs; ``values``: output name → plain value."""

    files: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def split_outputs(signature: Mapping[str, Any], outputs_json: Mapping[str, Any]) -> WorkflowOutputs:
    """Sort an engine's outputs (``{"wf.out": value}``: miniwdl's ``outputs.json``, the
    ``outputs`` of Cromwell's outputs endpoint) by the signature's outputs. Keys without the
    workflow prefix are accepted too. A missing optional output is ``[]`` or ``None``; missing
    required ones raise :class:`OutputsIncomplete`."""
    prefix = f"{signature['workflow_name']}."
    by_name = {
        (key[len(prefix) :] if key.startswith(prefix) else key): value
        for key, value in outputs_json.items()
    }
    result = WorkflowOutputs()
    missing = []
    for name, spec in signature["outputs"].items():
        value = by_name.get(name)
        if value is None and spec.get("required", True):
            missing.append(name)
            continue
        if is_file_output(spec):
            result.files[name] = flatten_output_files(value, spec)
        else:
            result.values[name] = value
    if missing:
        raise OutputsIncomplete(missing)
    return result
