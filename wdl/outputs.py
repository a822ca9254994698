"""Read a workflow's outputs back, keeping their structure.

An output's *shape* is its Ferry output type (``operations/spec.py``), made of::

    {"type": "file", "file_type": "binary"}            a file (a path or URI from the engine)
    {"type": "integer" | "float" | "string" | "boolean"}
    {"type": "list", "items": <shape>}                 Array[X]
    {"type": "map", "values": <shape>}                 Map[String, X] (a JSON object)
    {"type": "pair", "left": <shape>, "right": <shape>}     Pair[X, Y] ({"left", "right"})
    {"type": "struct", "members": {"name": <shape>}}   a struct (a JSON object)

:func:`rebuild` walks a value along its shape, checks it, and replaces each file with what a
callback makes of it (a host path, a stored File's id), so ``[["a/1", "a/2"], ["b/1"], []]``
stays a list of three lists. Every file has a *position*: the list indexes (ints), map keys,
``"left"``/``"right"`` and member names (strs) leading to it, e.g. ``(1, 0)`` or ``("s1",)``.
:func:`path_segment` turns a position's parts into path-safe, distinct folder names and
:func:`distinct_file_names` gives a job's result files names that differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import WDL

Position = tuple[int | str, ...]

_SCALAR_CHECKS: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
}
_TYPE_WORDS = {
    "list": "a list",
    "map": "an object (a map)",
    "pair": 'an object with "left" and "right"',
    "struct": "an object (a struct)",
}


def describe_position(position: Position) -> str:
    """``(1, "s1", "left")`` → ``[1]["s1"].left``; ``()`` → ``""``."""
    parts = []
    for part in position:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f"[{json.dumps(part)}]")
    return "".join(parts)


class OutputShapeError(ValueError):
    """A value doesn't fit its output's shape; ``position`` says where inside it."""

    def __init__(self, position: Position, message: str):
        self.position = position
        self.problem = message
        where = describe_position(position)
        super().__init__(f"{where}: {message}" if where else message)

    def describe(self, output: str) -> str:
        """E.g. ``output 'grid'[1][0] should name a file, not 3``."""
        return f"output {output!r}{describe_position(self.position)} {self.problem}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def holds_files(shape: Mapping[str, Any] | None) -> bool:
    """Whether a value of this shape can contain files."""
    if not isinstance(shape, Mapping):
        return False
    kind = shape.get("type")
    if kind == "file":
        return True
    if kind == "list":
        return holds_files(shape.get("items"))
    if kind == "map":
        return holds_files(shape.get("values"))
    if kind == "pair":
        return holds_files(shape.get("left")) or holds_files(shape.get("right"))
    if kind == "struct":
        return any(holds_files(member) for member in (shape.get("members") or {}).values())
    return False


def describe_shape(shape: Mapping[str, Any]) -> str:
    """``list of list of file``, ``map of string to file``, ``pair of string and file``…"""
    kind = str(shape.get("type"))
    if kind == "list":
        return f"list of {describe_shape(shape.get('items') or {})}"
    if kind == "map":
        return f"map of string to {describe_shape(shape.get('values') or {})}"
    if kind == "pair":
        left, right = (describe_shape(shape.get(side) or {}) for side in ("left", "right"))
        return f"pair of {left} and {right}"
    if kind == "struct":
        members = (shape.get("members") or {}).items()
        return "struct of " + ", ".join(f"{m}: {describe_shape(t)}" for m, t in members)
    return kind


def file_shapes(shape: Any) -> Iterator[dict[str, Any]]:
    """The ``file`` nodes of a shape (e.g. to set their ``file_type``)."""
    kind = shape.get("type")
    if kind == "file":
        yield shape
    elif kind == "list":
        yield from file_shapes(shape["items"])
    elif kind == "map":
        yield from file_shapes(shape["values"])
    elif kind == "pair":
        yield from file_shapes(shape["left"])
        yield from file_shapes(shape["right"])
    elif kind == "struct":
        for member in shape["members"].values():
            yield from file_shapes(member)


def rebuild(
    shape: Mapping[str, Any],
    value: Any,
    on_file: Callable[[Position, Any], Any],
    position: Position = (),
) -> Any:
    """``value`` with each file replaced by ``on_file(position, path_or_uri)``, checked against
    ``shape`` on the way (``None`` is accepted anywhere: optional values). Raise
    :class:`OutputShapeError` naming the first place that doesn't fit."""
    if value is None:
        return None
    kind = shape.get("type")
    if kind == "file":
        return _rebuild_file(value, on_file, position)
    if kind in _SCALAR_CHECKS:
        if not _SCALAR_CHECKS[kind](value):
            raise OutputShapeError(position, f"must be {kind}, not {_kind(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise OutputShapeError(position, f"must be a list, not {_kind(value)}")
        items = shape["items"]
        return [rebuild(items, item, on_file, (*position, i)) for i, item in enumerate(value)]
    return _rebuild_object(shape, value, on_file, position)


def _rebuild_file(value: Any, on_file: Callable[[Position, Any], Any], position: Position) -> Any:
    """A file: a local path the executor found on this host, or a non-empty path/URI string."""
    if isinstance(value, os.PathLike):  # a file the executor found on this host
        return on_file(position, value)
    if not isinstance(value, str) or not value:
        raise OutputShapeError(position, f"should name a file, not {json.dumps(value)[:100]}")
    return on_file(position, value)


def _rebuild_object(
    shape: Mapping[str, Any],
    value: Any,
    on_file: Callable[[Position, Any], Any],
    position: Position,
) -> Any:
    """A map, pair or struct: an object whose entries (keys, ``left``/``right``, members) are
    rebuilt by the shape each holds."""
    kind = shape.get("type")
    if not isinstance(value, Mapping):
        raise OutputShapeError(
            position, f"must be {_TYPE_WORDS.get(str(kind), kind)}, not {_kind(value)}"
        )
    if kind == "map":
        values = shape["values"]
        return {
            str(key): rebuild(values, item, on_file, (*position, str(key)))
            for key, item in value.items()
        }
    if kind == "pair":
        return {
            side: rebuild(shape[side], value.get(side), on_file, (*position, side))
            for side in ("left", "right")
        }
    if kind == "struct":
        return {
            member: rebuild(member_shape, value.get(member), on_file, (*position, member))
            for member, member_shape in shape["members"].items()
        }
    raise OutputShapeError(position, f"has an unknown output type {kind!r}")


def file_leaves(shape: Mapping[str, Any], value: Any) -> list[tuple[Position, Any]]:
    """Every file in a value as ``(position, path_or_uri)``, in the value's order."""
    found: list[tuple[Position, Any]] = []

    def keep(position: Position, ref: Any) -> Any:
        found.append((position, ref))
        return ref

    rebuild(shape, value, keep)
    return found


def engine_shape(declared: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The shape of a file output as a run spec declares it for executors (its ``shape``, or
    for older run specs ``{"type": "file", "many": bool}``); ``None`` for outputs that hold no
    files."""
    if not isinstance(declared, Mapping):
        return None
    shape = declared.get("shape")
    if isinstance(shape, Mapping) and holds_files(shape):
        return shape
    if declared.get("type") == "file":
        single = {"type": "file"}
        return {"type": "list", "items": single} if declared.get("many") else single
    if declared.get("type") == "list" and holds_files(declared.get("items")):
        return declared
    return None


def output_name(
    key: str,
    declared: Mapping[str, Any],
    workflow_name: str,
    renamed: Mapping[str, str] | None = None,
) -> str:
    """The operation's output name for an engine's output key (``Workflow.out``): the output
    whose ``wdl_output`` is that key (WebMEV Cromwell operations name theirs so), else the key
    without the workflow's prefix, as ``renamed`` names it (draft-2 outputs named by their
    call, ``call.out``, have Ferry names like ``call__out``)."""
    for name, spec in declared.items():
        if isinstance(spec, Mapping) and spec.get("wdl_output") == key:
            return str(name)
    prefix = f"{workflow_name}."
    name = key[len(prefix) :] if workflow_name and key.startswith(prefix) else key.split(".", 1)[-1]
    return (renamed or {}).get(name, name)


# --- names for stored result files --------------------------------------------------------------

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def path_segment(part: int | str) -> str:
    """A position part as one path-safe folder name. List indexes and plain keys
    (``s1``, ``sample-2.b``) stay as they are; other keys (``a/b``, ``é``, ``..``, long ones)
    are cleaned and get ``~`` and a digest of the original, so distinct keys stay distinct
    (a plain key never contains ``~``)."""
    if isinstance(part, int):
        return str(part)
    if _SAFE_SEGMENT.fullmatch(part):
        return part
    cleaned = _UNSAFE_CHARS.sub("_", part)[:40].strip("._-") or "key"
    digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned}~{digest}"


def position_label(output: str, position: Position) -> str:
    """``grid`` + ``(1, 0)`` → ``grid-1-0``: which output and where in it, for a file name."""
    return "-".join([output, *(path_segment(part) for part in position)])


@dataclass(frozen=True)
class ResultFile:
    output: str
    position: Position
    basename: str
    tiebreak: str = ""  # e.g. the file's id, used only if labels alone don't separate names


def distinct_file_names(files: Sequence[ResultFile]) -> list[str]:
    """Names for a job's result files, in order, that all differ: a file keeps its basename
    when no other result file has it; otherwise its name starts with where it came from,
    ``grid-1-0_1.txt`` (output ``grid``, row 1, item 0). Deterministic: the same files always
    get the same names."""
    counts: dict[str, int] = {}
    for item in files:
        counts[item.basename] = counts.get(item.basename, 0) + 1
    names = [
        item.basename
        if counts[item.basename] == 1
        else f"{position_label(item.output, item.position)}_{item.basename}"
        for item in files
    ]
    # A labelled name may equal another file's basename, or two labels may read the same
    # (nested maps whose keys hold "-"): label those too, then add the tiebreak.
    for round_ in range(2):
        seen: dict[str, int] = {}
        for name in names:
            seen[name] = seen.get(name, 0) + 1
        clashing = [i for i, name in enumerate(names) if seen[name] > 1]
        if not clashing:
            break
        for i in clashing:
            item = files[i]
            label = position_label(item.output, item.position)
            names[i] = (
                f"{label}_{item.basename}"
                if round_ == 0
                else f"{label}~{item.tiebreak or i}_{item.basename}"
            )
    return names


# --- WDL types and whole outputs --------------------------------------------------------------


def _files_of_type(value: Any, wdl_type: WDL.Type.Base) -> Iterator[str]:
    if value is None:
        return
    if isinstance(wdl_type, WDL.Type.File):
        if isinstance(value, str):
            yield value
        return
    for part, part_type in _typed_parts(value, wdl_type):
        yield from _files_of_type(part, part_type)


def _typed_parts(value: Any, wdl_type: WDL.Type.Base) -> Iterator[tuple[Any, WDL.Type.Base]]:
    """The parts of a compound value, in order, each with its WDL type: array items, map keys
    and values, pair sides, struct members. Nothing for other types, or a value not shaped
    like its type."""
    if isinstance(wdl_type, WDL.Type.Array) and isinstance(value, list):
        for item in value:
            yield item, wdl_type.item_type
    elif isinstance(wdl_type, WDL.Type.Map) and isinstance(value, Mapping):
        key_type, value_type = wdl_type.item_type
        for key, item in value.items():
            yield key, key_type
            yield item, value_type
    elif isinstance(wdl_type, WDL.Type.Pair) and isinstance(value, Mapping):
        yield value.get("left"), wdl_type.left_type
        yield value.get("right"), wdl_type.right_type
    elif isinstance(wdl_type, WDL.Type.StructInstance) and isinstance(value, Mapping):
        for member, member_type in (wdl_type.members or {}).items():
            yield value.get(member), member_type


def flatten_output_files(value: Any, wdl_type: WDL.Type.Base | Mapping[str, Any]) -> list[str]:
    """Every file path/URI in an output value, in order, given its WDL type (``File``, arrays at
    any depth, ``Map``/``Pair``/struct members, optional ``None``) or its Ferry output shape
    (in :func:`file_leaves` order). ``Directory`` is not a file."""
    if isinstance(wdl_type, WDL.Type.Base):
        return list(_files_of_type(value, wdl_type))
    return [ref for _, ref in file_leaves(wdl_type, value)]


def is_file_output(spec: Mapping[str, Any]) -> bool:
    """Whether an output (of any shape) holds files."""
    return holds_files(spec)


def file_refs_of(specs: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> list[Any]:
    """The file references in ``values`` (input or output name -> value) of the names whose spec
    holds files (:func:`is_file_output`), at any depth of lists, maps, pairs and structs, in
    order."""
    from .input_shapes import file_refs

    found: list[Any] = []
    for name, value in values.items():
        if is_file_output(specs[name]):
            found += file_refs(specs[name], value)
    return found


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
