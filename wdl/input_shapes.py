"""Structured WDL inputs: ``Pair``, ``Map``, structs, arrays of arrays, optional items.

The inputs ``wdl/signature.py`` maps flat (``File``, scalars, ``Array[File]``, ``Array[scalar]``)
keep their flat form. Any other input type becomes a *shape*, the way outputs keep theirs
(``wdl/outputs.py``), at any depth::

    Int / Float / String / Boolean  {"type": "integer" | "float" | "string" | "boolean"}
    File                            {"type": "file", "file_types": [...]}
    Array[X]                        {"type": "list", "items": X}
    Map[String, X]                  {"type": "map", "values": X}
    Map[Int, X] (Float, Boolean)    {"type": "map", "keys": "integer", "values": X}
    Pair[X, Y]                      {"type": "pair", "left": X, "right": Y}
    a struct                        {"type": "struct", "members": {"name": X, ...}}
    X? inside another type          X with "optional": true

A job gives its value as the engines' inputs JSON does: lists as arrays, maps and structs as
objects, pairs as ``{"left": …, "right": …}``, a file as a Ferry file id; Ferry replaces each file
id with where the engine reads the file (:func:`map_files`); a map's keys are JSON object keys
(``{"1": …}`` for an ``Int`` key). ``Directory``, ``Object`` and maps keyed by ``File`` or a
compound type are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import WDL

FILE_TYPES = ("table", "json", "text", "binary")  # the same as operations.spec.FILE_TYPES
STRUCTURED_KINDS = ("list", "map", "pair", "struct")
MAP_KEYS_WHY = "a Map's keys must be String, Int, Float or Boolean, not {}"
_SCALARS = {
    WDL.Type.Int: "integer",
    WDL.Type.Float: "float",
    WDL.Type.String: "string",
    WDL.Type.Boolean: "boolean",
}


def input_shape(wdl_type: WDL.Type.Base) -> tuple[dict[str, Any] | None, str]:
    """``(shape, "")`` for a WDL type, or ``(None, what is not supported)``."""
    shape, why = _shape(wdl_type)
    if shape is not None and wdl_type.optional:
        shape.pop("optional", None)  # the input's own optionality is its "required"
    return shape, why


_Shape = tuple[dict[str, Any] | None, str]


def _map_shape(wdl_type: WDL.Type.Map) -> _Shape:
    key_type, value_type = wdl_type.item_type
    key_kind = _SCALARS.get(type(key_type))
    if key_kind is None:
        return None, MAP_KEYS_WHY.format(str(key_type).rstrip("?"))
    values, why = _shape(value_type)
    if not values:
        return None, why
    shape: dict[str, Any] = {"type": "map", "values": values}
    if key_kind != "string":
        shape["keys"] = key_kind  # given as JSON object keys ("1"), as the engines take them
    return shape, why


def _pair_shape(wdl_type: WDL.Type.Pair) -> _Shape:
    left, why_left = _shape(wdl_type.left_type)
    right, why_right = _shape(wdl_type.right_type)
    why = why_left or why_right
    return ({"type": "pair", "left": left, "right": right} if left and right else None), why


def _struct_shape(wdl_type: WDL.Type.StructInstance) -> _Shape:
    members: dict[str, Any] = {}
    for member, member_type in (wdl_type.members or {}).items():
        inner, inner_why = _shape(member_type)
        if inner is None:
            return None, f"member {member} of {wdl_type.type_name}: {inner_why}"
        members[member] = inner
    return {"type": "struct", "members": members}, ""


def _compound_shape(wdl_type: WDL.Type.Base) -> _Shape:
    """The shape of a File, Array, Map, Pair or struct type."""
    if isinstance(wdl_type, WDL.Type.File):
        return {"type": "file", "file_types": list(FILE_TYPES)}, ""
    if isinstance(wdl_type, WDL.Type.Array):
        items, why = _shape(wdl_type.item_type)
        return ({"type": "list", "items": items} if items else None), why
    if isinstance(wdl_type, WDL.Type.Map):
        return _map_shape(wdl_type)
    if isinstance(wdl_type, WDL.Type.Pair):
        return _pair_shape(wdl_type)
    if isinstance(wdl_type, WDL.Type.StructInstance) and wdl_type.members is not None:
        return _struct_shape(wdl_type)
    return None, f"{str(wdl_type).rstrip('?')} is not supported"


def _shape(wdl_type: WDL.Type.Base) -> _Shape:
    kind = _SCALARS.get(type(wdl_type))
    scalar: dict[str, Any] = {"type": kind}
    shape, why = (scalar, "") if kind is not None else _compound_shape(wdl_type)
    if shape is not None and wdl_type.optional:
        shape["optional"] = True
    return shape, why


def is_structured(spec: Mapping[str, Any]) -> bool:
    """Whether an input spec is a shape (not one of the flat forms)."""
    kind = spec.get("type")
    if kind in ("map", "pair", "struct"):
        return True
    if kind == "list":
        items = spec.get("items") or {}
        return items.get("type") in STRUCTURED_KINDS or bool(items.get("optional"))
    return False


def input_file_nodes(shape: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The ``file`` nodes of an input spec (the input itself when it is a file), at any depth."""
    kind = shape.get("type")
    if kind == "file":
        yield shape
    elif kind == "list":
        yield from input_file_nodes(shape["items"])
    elif kind == "map":
        yield from input_file_nodes(shape["values"])
    elif kind == "pair":
        yield from input_file_nodes(shape["left"])
        yield from input_file_nodes(shape["right"])
    elif kind == "struct":
        for member in shape["members"].values():
            yield from input_file_nodes(member)


def children(shape: Mapping[str, Any], value: Any) -> Iterator[tuple[str | int, Any, Any]]:
    """``(key, inner shape, inner value)`` for each part of a structured value that fits the
    shape's kind (parts that don't fit are skipped: the value is checked elsewhere)."""
    kind = shape.get("type")
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield index, shape["items"], item
    elif isinstance(value, Mapping):
        yield from _mapping_children(kind, shape, value)


def _mapping_children(
    kind: Any, shape: Mapping[str, Any], value: Mapping[str, Any]
) -> Iterator[tuple[str | int, Any, Any]]:
    if kind == "map":
        for key, item in value.items():
            yield str(key), shape["values"], item
    elif kind == "pair":
        for side in ("left", "right"):
            if side in value:
                yield side, shape[side], value[side]
    elif kind == "struct":
        for member, item in value.items():
            if member in shape["members"]:
                yield str(member), shape["members"][member], item


def map_files(shape: Mapping[str, Any], value: Any, on_file: Callable[[Any], Any]) -> Any:
    """The value with each file in it replaced by ``on_file(file)``, its structure kept
    (floats given as integers become floats)."""
    if value is None:
        return None
    kind = shape.get("type")
    if kind == "file":
        if isinstance(value, list):  # a flat file input with "many"
            return [on_file(item) for item in value]
        return on_file(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "list" and isinstance(value, list):
        return [map_files(shape["items"], item, on_file) for item in value]
    if kind in ("map", "pair", "struct") and isinstance(value, Mapping):
        mapped = dict(value)
        for key, inner, item in children(shape, value):
            mapped[str(key)] = map_files(inner, item, on_file)
        return mapped
    return value


def file_refs(shape: Mapping[str, Any], value: Any) -> list[Any]:
    """The files a value holds, in order, at any depth."""
    found: list[Any] = []

    def note(ref: Any) -> Any:
        found.append(ref)
        return ref

    map_files(shape, value, note)
    return found
