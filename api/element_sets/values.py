"""Observations, features and their sets as values: checked and normalized, no Django.

The shapes follow WebMEV's (``Observation``/``Feature``, ``ObservationSet``/``FeatureSet``)::

    element = {"id": "sample_1",
               "attributes": {"age": {"attribute_type": "PositiveInteger", "value": 42}}}
    set     = {"elements": [element, ...]}

An id follows WebMEV's ``String`` rule: surrounding space dropped, inner spaces become ``_``,
then only letters, digits and ``: _ . -``, at most :data:`ID_MAX_LENGTH` characters. ``attributes``
is optional (``{}``); each attribute is one of WebMEV's simple types. Unknown keys, duplicate ids
(after normalizing) and values of the wrong type are refused. Every problem is reported with its
path inside the value (``elements[3].id``, ``elements[0].attributes.age.value``), at most
:data:`MAX_PROBLEMS` of them, so a hostile value can't make the answer huge.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

KINDS = ("observation", "feature")

MAX_ELEMENTS = 50_000
ID_MAX_LENGTH = 100
MAX_ATTRIBUTES = 100
ATTRIBUTE_NAME_MAX_LENGTH = 100
STRING_MAX_LENGTH = 100  # WebMEV's String
UNRESTRICTED_STRING_MAX_LENGTH = 1000  # WebMEV's UnrestrictedString
MAX_PROBLEMS = 20

_ID_RE = re.compile(r"[:_.\-a-zA-Z0-9]+")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ATTRIBUTE_TYPES = (
    "Integer",
    "PositiveInteger",
    "NonNegativeInteger",
    "Float",
    "PositiveFloat",
    "NonNegativeFloat",
    "String",
    "UnrestrictedString",
    "Boolean",
)

Problem = tuple[str, str]


class TooManyProblems(Exception):
    """Raised inside a check once :data:`MAX_PROBLEMS` were collected."""


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))
        if len(self.items) >= MAX_PROBLEMS:
            raise TooManyProblems


def child(path: str, key: object) -> str:
    """``elements`` + 3 → ``elements[3]``; ``attributes`` + ``age`` → ``attributes.age``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if _IDENTIFIER_RE.fullmatch(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text)}]"


def _fmt(value: Any) -> str:
    text = (
        json.dumps(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    )
    return text if len(text) <= 60 else text[:57] + "..."


def normalize_id(raw: Any) -> tuple[str | None, str | None]:
    """(the normalized id, None) or (None, why it is refused)."""
    if not isinstance(raw, str):
        return None, f"must be a string, not {_fmt(raw)}"
    value = raw.strip().replace(" ", "_")
    if not value:
        return None, "must not be empty"
    if len(value) > ID_MAX_LENGTH:
        return None, f"is longer than {ID_MAX_LENGTH} characters"
    if not _ID_RE.fullmatch(value):
        return None, (f"{_fmt(raw)} may hold only letters, digits and : _ . - (spaces become _)")
    return value, None


def _integer_value(kind: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, int) or isinstance(value, bool):
        return None, f"must be an integer, not {_fmt(value)}"
    if kind == "PositiveInteger" and value <= 0:
        return None, f"must be greater than 0, not {value}"
    if kind == "NonNegativeInteger" and value < 0:
        return None, f"must be 0 or more, not {value}"
    return value, None


def _float_value(kind: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None, f"must be a (finite) number, not {_fmt(value)}"
    if kind == "PositiveFloat" and value <= 0:
        return None, f"must be greater than 0, not {value}"
    if kind == "NonNegativeFloat" and value < 0:
        return None, f"must be 0 or more, not {value}"
    return float(value), None


def _string_value(kind: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str):
        return None, f"must be a string, not {_fmt(value)}"
    normalized = value.strip().replace(" ", "_")
    if len(normalized) > STRING_MAX_LENGTH:
        return None, f"is longer than {STRING_MAX_LENGTH} characters"
    if normalized and not _ID_RE.fullmatch(normalized):
        return None, f"{_fmt(value)} may hold only letters, digits and : _ . - (spaces become _)"
    return normalized, None


def _unrestricted_string_value(kind: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str):
        return None, f"must be a string, not {_fmt(value)}"
    if len(value) > UNRESTRICTED_STRING_MAX_LENGTH:
        return None, f"is longer than {UNRESTRICTED_STRING_MAX_LENGTH} characters"
    if "\x00" in value:
        return None, "must not contain NUL characters"
    return value, None


def _boolean_value(kind: str, value: Any) -> tuple[Any, str | None]:
    """A Boolean, spelled as WebMEV accepts it: true/false, 0/1, "true"/"false"."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int) and value in (0, 1):
        return bool(value), None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true", None
    return None, f"must be true or false, not {_fmt(value)}"


_ATTRIBUTE_VALUE_CHECKS = {
    "Integer": _integer_value,
    "PositiveInteger": _integer_value,
    "NonNegativeInteger": _integer_value,
    "Float": _float_value,
    "PositiveFloat": _float_value,
    "NonNegativeFloat": _float_value,
    "String": _string_value,
    "UnrestrictedString": _unrestricted_string_value,
    "Boolean": _boolean_value,
}


def _attribute_value(kind: str, value: Any) -> tuple[Any, str | None]:
    """The normalized value of one attribute, or why it is refused."""
    return _ATTRIBUTE_VALUE_CHECKS.get(kind, _boolean_value)(kind, value)


def _attribute(name: Any, attribute: Any, apath: str, problems: _Problems) -> dict[str, Any] | None:
    """One checked attribute ``{attribute_type, value}``, or None (its problem recorded)."""
    if not isinstance(name, str) or not name.strip():
        problems.add(apath, "an attribute name must be a non-empty string")
        return None
    if len(name) > ATTRIBUTE_NAME_MAX_LENGTH:
        problems.add(apath, f"the name is longer than {ATTRIBUTE_NAME_MAX_LENGTH} characters")
        return None
    if not isinstance(attribute, Mapping):
        problems.add(apath, 'must be an object like {"attribute_type": "String", "value": "x"}')
        return None
    extra = sorted(str(k) for k in attribute if k not in ("attribute_type", "value"))
    if extra:
        problems.add(
            apath,
            f"unknown key(s) {', '.join(extra)}; an attribute has only attribute_type and value",
        )
        return None
    kind = attribute.get("attribute_type")
    if kind not in ATTRIBUTE_TYPES:
        problems.add(
            child(apath, "attribute_type"),
            f"must be one of {', '.join(ATTRIBUTE_TYPES)}"
            + (f", not {_fmt(kind)}" if kind is not None else ""),
        )
        return None
    if "value" not in attribute:
        problems.add(child(apath, "value"), "is required")
        return None
    value, error = _attribute_value(str(kind), attribute["value"])
    if error is not None:
        problems.add(child(apath, "value"), error)
        return None
    return {"attribute_type": kind, "value": value}


def _attributes(raw: Any, path: str, problems: _Problems) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.add(path, "must be an object mapping attribute names to {attribute_type, value}")
        return {}
    if len(raw) > MAX_ATTRIBUTES:
        problems.add(path, f"has {len(raw)} attributes; at most {MAX_ATTRIBUTES} are allowed")
        return {}
    out: dict[str, Any] = {}
    for name, attribute in raw.items():
        checked = _attribute(name, attribute, child(path, name), problems)
        if checked is not None:
            out[name] = checked
    return out


def _element(raw: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.add(path, 'must be an object like {"id": "sample_1", "attributes": {}}')
        return None
    extra = sorted(str(k) for k in raw if k not in ("id", "attributes"))
    if extra:
        problems.add(
            path, f"unknown key(s) {', '.join(extra)}; an element has only id and attributes"
        )
        return None
    if "id" not in raw:
        problems.add(child(path, "id"), "is required")
        return None
    element_id, error = normalize_id(raw["id"])
    if error is not None:
        problems.add(child(path, "id"), error)
        return None
    before = len(problems.items)
    attributes = _attributes(raw.get("attributes", {}), child(path, "attributes"), problems)
    if len(problems.items) > before:
        return None
    return {"id": element_id, "attributes": attributes}


def check_element(raw: Any, *, path: str = "") -> tuple[dict[str, Any] | None, list[Problem]]:
    """One observation or feature: (its normalized value, []) or (None, problems)."""
    problems = _Problems()
    try:
        element = _element(raw, path, problems)
    except TooManyProblems:
        element = None
    return (element if not problems.items else None), problems.items


def check_set(raw: Any, *, path: str = "") -> tuple[dict[str, Any] | None, list[Problem]]:
    """A set value ``{"elements": [...]}``: (its normalized value, []) or (None, problems)."""
    problems = _Problems()
    try:
        out = _set(raw, path, problems)
    except TooManyProblems:
        out = None
    return (out if not problems.items else None), problems.items


def _set(raw: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.add(path or "$", 'must be an object like {"elements": [{"id": "sample_1"}]}')
        return None
    extra = sorted(str(k) for k in raw if k != "elements")
    if extra:
        problems.add(path or "$", f"unknown key(s) {', '.join(extra)}; a set has only elements")
        return None
    return {"elements": check_elements(raw.get("elements"), child(path, "elements"), problems)}


def check_elements(raw: Any, path: str, problems: _Problems) -> list[dict[str, Any]]:
    """The ``elements`` list of a set: every element checked, ids unique."""
    if raw is None:
        problems.add(path, "is required: a list of elements")
        return []
    if not isinstance(raw, list):
        problems.add(path, f"must be a list of elements, not {_fmt(raw)}")
        return []
    if len(raw) > MAX_ELEMENTS:
        problems.add(path, f"has {len(raw)} elements; a set holds at most {MAX_ELEMENTS}")
        return []
    out: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        epath = child(path, index)
        element = _element(item, epath, problems)
        if element is None:
            continue
        if element["id"] in first_seen:
            problems.add(
                child(epath, "id"),
                f"duplicate id {element['id']!r} (also elements[{first_seen[element['id']]}])",
            )
            continue
        first_seen[element["id"]] = index
        out.append(element)
    return out


def checked_elements(
    raw: Any, *, path: str = "elements"
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Just an ``elements`` list (as the API takes it): (normalized list, problems)."""
    problems = _Problems()
    try:
        out = check_elements(raw, path, problems)
    except TooManyProblems:
        out = []
    return out, problems.items


def set_algebra(
    operation: str, left: list[dict[str, Any]], right: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """``union``, ``intersection`` or ``difference`` of two normalized element lists, by id, in
    the left list's order (then the right's): (the elements, conflicts). An element in both sets
    gets the attributes of both; one attribute with different values in the two is a conflict
    (``"s2: age"``), as in WebMEV, and the caller refuses the result."""
    right_by_id = {e["id"]: e for e in right}
    left_ids = {e["id"] for e in left}
    if operation == "difference":
        return [e for e in left if e["id"] not in right_by_id], []
    merged: list[dict[str, Any]] = []
    conflicts: list[str] = []
    for element in left:
        other = right_by_id.get(element["id"])
        if other is None:
            if operation == "union":
                merged.append(element)
            continue
        mine, theirs = element["attributes"], other["attributes"]
        conflicts += [
            f"{element['id']}: {name}"
            for name in sorted(set(mine) & set(theirs))
            if mine[name] != theirs[name]
        ]
        merged.append({"id": element["id"], "attributes": {**theirs, **mine}})
    if operation == "union":
        merged += [e for e in right if e["id"] not in left_ids]
    return merged, conflicts
