"""Ferry's operation spec: parse it, check it (reporting every problem by JSON path), normalize it,
and render its command.

The normalized form (what ``Operation.spec`` stores) always has every key filled in::

    {"name": "table-summary", "version": "1.0.0", "description": "", "mode": "docker",
     "command": "summarize {{ table }} {{ min_rows }}",
     "resources": {"memory_mb": 256},                 # only what the spec asks for
     "safe_to_retry": False,
     "inputs": {"min_rows": {"type": "integer", "min": 0, "max": None, "description": "",
                             "required": False, "default": 1}, ...},
     "outputs": {"summary": {"type": "file", "file_type": "json", "description": "",
                             "required": True}, ...}}

Per input type, the normalized keys are: integer/float ``min``, ``max`` (``None`` when unbounded);
string ``pattern`` (``None`` or a regular expression searched in the value, as in JSON Schema:
anchor it with ``^…$`` to match the whole value); option ``choices``; file ``file_types``
(default: all of them) and ``many``; list ``items`` (the item's type and its constraints);
``observation_set``/``feature_set``/``observation``/``feature`` have no constraint keys (their
values are checked by ``api.element_sets.values``; a default is an inline value).
Every input has ``description``, ``required`` (default: true unless a default is given) and
``default`` (``None`` when there is none). Outputs are ``file`` (with ``file_type``), a scalar,
or a ``list`` of one of those; WDL operations' outputs may also nest, to keep a workflow's
values whole: ``list`` of any output type, ``map`` (string keys) with ``values``, ``pair`` with
``left``/``right``, ``struct`` with ``members`` (see ``wdl/outputs.py``). ``resources`` keeps only the limits the spec sets;
the executor's settings supply the rest. WDL operations have ``workflow`` (default
``"main.wdl"``) instead of ``command``. ``safe_to_retry`` (default false) says that running the
operation again from the start does no harm: Ferry then runs a job again (a few times at most)
when its engine restarted under it, instead of failing it. Specs stored before the key existed
lack it (read it with ``spec.get("safe_to_retry", False)``).

Command templates (docker mode) — the conventions :func:`render_command` follows:

- ``{{ name }}`` (spaces inside the braces optional) is replaced by the value of input ``name``,
  shell-quoted with :func:`shlex.quote`; the result runs as ``/bin/sh -c <command>``. Do not put
  placeholders inside quotes: Ferry quotes values itself (a quoted placeholder is an error).
- Files are container paths; booleans render as ``true``/``false``; numbers as written in JSON;
  a list (or a file input with ``many``) renders as its items, each quoted, separated by spaces.
  An observation/feature set renders as its element ids joined by commas (one argument, in the
  set's order); one observation/feature as its id.
- An optional input without a value (and without a default) renders as nothing at all, so the
  word disappears from the command; an empty string renders as ``''`` (an empty argument).
- Only ``{{ name }}`` is understood: template statements (``{% … %}``), filters
  (``{{ x | f }}``) and placeholders naming no input are errors.

WebMEV-style commands (``"command_style": "webmev"``, set by ``operations/webmev.py``) are Jinja
templates instead, rendered into argv words by :func:`render_argv` (``operations/templates.py``);
each input's ``render`` key says how its value is written. Keys a WebMEV conversion adds: inputs
``render``, ``wdl_input`` (and ``infinity`` on floats: the marker strings accepted as values),
outputs ``wdl_output``; input types ``observation_set``, ``feature_set``, ``observation``,
``feature``; option ``choices`` may be numbers (``"1"`` is not the choice ``1``).
"""

from __future__ import annotations

import functools
import json
import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import yaml

from api.element_sets import values as element_values
from api.exceptions import ApplicationError

from .templates import RENDER_STYLES, render_argv, template_problems

__all__ = ["RENDER_STYLES", "render_argv"]  # WebMEV-style commands: operations/templates.py

FILE_TYPES = ("table", "json", "text", "binary")
SCALAR_TYPES = ("integer", "float", "string", "boolean", "option")
# Observations/features and their sets (WebMEV's Observation, Feature, ObservationSet, FeatureSet).
ELEMENT_INPUT_TYPES = ("observation_set", "feature_set", "observation", "feature")
INPUT_TYPES = (*SCALAR_TYPES, "file", "list", *ELEMENT_INPUT_TYPES)
COMMAND_STYLES = ("ferry", "webmev")
OUTPUT_SCALAR_TYPES = ("file", "integer", "float", "string", "boolean")
OUTPUT_TYPES = (*OUTPUT_SCALAR_TYPES, "list", "map", "pair", "struct")  # the last three: WDL
MODES = ("docker", "wdl")
RESOURCE_KEYS = ("memory_mb", "cpus", "pids", "timeout_s")
# The command runs as one argument of ``/bin/sh -c``: Linux refuses a longer one (MAX_ARG_STRLEN).
MAX_COMMAND_BYTES = 131_071

NAME_MAX_LENGTH = 100
VERSION_MAX_LENGTH = 50
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

_TOP_KEYS = {
    "name",
    "version",
    "description",
    "mode",
    "command",
    "command_style",
    "workflow",
    "resources",
    "safe_to_retry",
    "inputs",
    "outputs",
    "webmev",
}
_INPUT_COMMON_KEYS = {"type", "description", "required", "default", "webmev", "render", "wdl_input"}
_OUTPUT_COMMON_KEYS = {"type", "description", "required", "webmev", "wdl_output"}
# What each output type holds besides "type" (see wdl/outputs.py for how values look).
_OUTPUT_SHAPE_KEYS: dict[str, tuple[str, ...]] = {
    "file": ("file_type",),
    "integer": (),
    "float": (),
    "string": (),
    "boolean": (),
    "list": ("items",),
    "map": ("values",),
    "pair": ("left", "right"),
    "struct": ("members",),
}
_CONSTRAINT_KEYS: dict[str, set[str]] = {
    "integer": {"min", "max"},
    "float": {"min", "max", "infinity"},
    "string": {"pattern"},
    "boolean": set(),
    "option": {"choices"},
    "file": {"file_types", "many"},
    "list": {"items"},
    **{kind: set() for kind in ELEMENT_INPUT_TYPES},
}


class SpecError(ApplicationError):
    """The spec is invalid. ``errors`` lists every problem as ``{"path", "message"}``."""

    code = "invalid_spec"

    def __init__(self, errors: list[dict[str, str]], *, source_name: str = "operation.json"):
        details: dict[str, list[str]] = {}
        for error in errors:
            details.setdefault(error["path"], []).append(error["message"])
        count = len(errors)
        first = f"{errors[0]['path']}: {errors[0]['message']}" if errors else ""
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(
            f"{source_name} is not a valid operation spec: {first}{more}", details=details
        )
        self.errors = errors
        self.source_name = source_name

    def describe(self) -> str:
        """Every problem on its own line, for terminals and logs."""
        lines = [f"{self.source_name} is not a valid operation spec:"]
        lines += [f"  {e['path']}: {e['message']}" for e in self.errors]
        return "\n".join(lines)


class _Problems:
    """Collects problems by path while a document is checked."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)


def child_path(path: str, key: object) -> str:
    """``$.inputs`` + ``min_rows`` → ``$.inputs.min_rows``; odd keys use brackets."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    if isinstance(key, str) and IDENTIFIER_RE.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key if isinstance(key, str) else repr(key))}]"


# --- loading (JSON or YAML), with duplicate keys detected ----------------------------------------


class _Object(dict[str, Any]):
    """A JSON/YAML object that remembers the keys it saw more than once."""

    duplicates: list[Any]

    def __init__(self) -> None:
        super().__init__()
        self.duplicates = []


def _object_from_pairs(pairs: Iterable[tuple[Any, Any]]) -> _Object:
    obj = _Object()
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_yaml_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Object:
    loader.flatten_mapping(node)
    pairs = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        pairs.append((key, loader.construct_object(value_node, deep=True)))
    return _object_from_pairs(pairs)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_yaml_mapping,
)


def is_yaml_name(source_name: str) -> bool:
    return source_name.lower().endswith((".yaml", ".yml"))


def load_document(raw: bytes | str | Mapping[str, Any], *, source_name: str) -> Any:
    """Parse JSON (or YAML for ``.yaml``/``.yml`` names); raise :class:`SpecError` on bad syntax."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(
                [{"path": "$", "message": f"not UTF-8 text ({exc.reason} at byte {exc.start})"}],
                source_name=source_name,
            ) from None
    if is_yaml_name(source_name):
        try:
            return yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(
                [{"path": "$", "message": f"invalid YAML{where}: {problem}"}],
                source_name=source_name,
            ) from None
    try:
        return json.loads(raw.lstrip("\ufeff"), object_pairs_hook=_object_from_pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(
            [
                {
                    "path": "$",
                    "message": f"invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
                }
            ],
            source_name=source_name,
        ) from None


def _check_keys_and_duplicates(value: Any, path: str, problems: _Problems) -> None:
    """Report duplicate and non-string keys anywhere in the document."""
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", []):
            if path == "$.inputs":
                message = f"input {key!r} is defined more than once"
            elif path == "$.outputs":
                message = f"output {key!r} is defined more than once"
            else:
                message = f"key {key!r} appears more than once (keys must be unique)"
            problems.add(child_path(path, key), message)
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(child_path(path, key), f"keys must be strings, not {key!r}")
                continue
            _check_keys_and_duplicates(item, child_path(path, key), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_keys_and_duplicates(item, child_path(path, index), problems)


# --- values ---------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def _integer_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    if not _is_int(value):
        return [f"must be an integer, not {_fmt(value)}"]
    return _bound_errors(type_spec, value)


def _float_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    if isinstance(value, str) and value in (type_spec.get("infinity") or ()):
        return []  # a WebMEV marker for infinity ("++inf++")
    if not _is_number(value):
        return [f"must be a (finite) number, not {_fmt(value)}"]
    return _bound_errors(type_spec, value)


def _string_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"must be a string, not {_fmt(value)}"]
    pattern = type_spec.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        return [f"{_fmt(value)} does not match the pattern {pattern!r}"]
    return []


def _boolean_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    return [] if isinstance(value, bool) else [f"must be true or false, not {_fmt(value)}"]


def _option_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    choices = list(type_spec.get("choices") or [])
    if not any(_same_choice(value, choice) for choice in choices):
        return [f"{_fmt(value)} is not one of the choices {choices}"]
    return []


def _file_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    if not type_spec.get("many"):
        return [] if isinstance(value, str) else ["must be a file"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ["must be a list of files"]
    return []


def _list_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"must be a list, not {_fmt(value)}"]
    items = type_spec.get("items") or {}
    out = []
    for index, item in enumerate(value):
        out += [f"item {index}: {message}" for message in value_errors(items, item)]
    return out


# How a value is checked against each input type: ``(type_spec, value) -> problems``.
def _element_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    return [
        message if path in ("", "$") else f"{path}: {message}"
        for path, message in element_problems(str(type_spec["type"]), value)
    ]


_VALUE_CHECKS: dict[str, Callable[[Mapping[str, Any], Any], list[str]]] = {
    "integer": _integer_errors,
    "float": _float_errors,
    "string": _string_errors,
    "boolean": _boolean_errors,
    "option": _option_errors,
    "file": _file_errors,
    "list": _list_errors,
    **{kind: _element_errors for kind in ELEMENT_INPUT_TYPES},
}


def value_errors(type_spec: Mapping[str, Any], value: Any) -> list[str]:
    """Why ``value`` does not fit a normalized input (or list item) spec; empty when it fits.

    Files are checked for their shape only: a string (a file reference or a container path), or
    a list of them when the input takes ``many``.
    """
    kind = type_spec.get("type")
    check = _VALUE_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        return [f"unknown type {kind!r}"]
    return check(type_spec, value)


def _same_choice(value: Any, choice: Any) -> bool:
    """A value matches a choice of its own kind: ``"1"`` is not the choice ``1``."""
    if isinstance(choice, str):
        return isinstance(value, str) and value == choice
    return _is_number(value) and bool(value == choice)


def _bound_errors(type_spec: Mapping[str, Any], value: float) -> list[str]:
    low, high = type_spec.get("min"), type_spec.get("max")
    if low is not None and value < low:
        return [f"{_fmt(value)} is below the minimum {_fmt(low)}"]
    if high is not None and value > high:
        return [f"{_fmt(value)} is above the maximum {_fmt(high)}"]
    return []


def _normalize_value(type_spec: Mapping[str, Any], value: Any) -> Any:
    """Floats given as integers become floats (``1`` → ``1.0``), also inside lists."""
    if type_spec.get("type") == "float" and _is_int(value):
        return float(value)
    if type_spec.get("type") in ELEMENT_INPUT_TYPES:
        return checked_element_value(str(type_spec["type"]), value)[0] or value
    if type_spec.get("type") == "list" and isinstance(value, list):
        return [_normalize_value(type_spec.get("items") or {}, item) for item in value]
    return value


# --- observations, features and their sets -------------------------------------------------------


def checked_element_value(
    kind: str, value: Any, *, path: str = ""
) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """An inline value of an element input type, normalized (``{"elements": [...]}`` for a set,
    ``{"id", "attributes"}`` for one element), or the problems by path inside it."""
    if kind.endswith("_set"):
        return element_values.check_set(value, path=path)
    return element_values.check_element(value, path=path)


def element_problems(kind: str, value: Any) -> list[tuple[str, str]]:
    return checked_element_value(kind, value)[1]


def element_ids(value: Mapping[str, Any]) -> list[str]:
    """The ids of a set value (in its order) or of one element: what a command gets by default,
    and what converters build on."""
    if "elements" in value:
        return [str(element["id"]) for element in value["elements"]]
    return [str(value["id"])]


# --- checking and normalizing ----------------------------------------------------------------------


def _string(
    raw: Mapping[str, Any], key: str, path: str, problems: _Problems, default: str | None = None
) -> str | None:
    if key not in raw:
        if default is None:
            problems.add(child_path(path, key), "is required")
        return default
    value = raw[key]
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, int | float) else ""
        problems.add(child_path(path, key), f"must be a string, not {_fmt(value)}{hint}")
        return default
    return value


def _unknown_keys(
    raw: Mapping[str, Any], allowed: set[str], path: str, problems: _Problems, what: str
) -> None:
    for key in raw:
        if isinstance(key, str) and key not in allowed:
            known = ", ".join(sorted(allowed - {"webmev"}))
            problems.add(child_path(path, key), f"unknown key for {what} (known keys: {known})")


def _number_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """``min``/``max`` of an integer or float: numbers of that kind, ``min`` not above ``max``."""
    check = _is_int if kind == "integer" else _is_number
    what = "an integer" if kind == "integer" else "a number"
    out: dict[str, Any] = {}
    usable = True
    for bound in ("min", "max"):
        value = raw.get(bound)
        if value is not None and not check(value):
            problems.add(child_path(path, bound), f"must be {what}, not {_fmt(value)}")
            value, usable = None, False
        if kind == "float" and value is not None:
            value = float(value)
        out[bound] = value
    if kind == "float" and "infinity" in raw:
        out["infinity"] = _infinity(raw["infinity"], child_path(path, "infinity"), problems)
    if out["min"] is not None and out["max"] is not None and out["min"] > out["max"]:
        problems.add(
            child_path(path, "min"),
            f"min ({_fmt(out['min'])}) is greater than max ({_fmt(out['max'])})",
        )
        usable = False
    return out if usable else None


def _string_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """A string's ``pattern``: absent, or a regular expression that compiles."""
    pattern = raw.get("pattern")
    if pattern is None:
        return {"pattern": None}
    if not isinstance(pattern, str):
        problems.add(child_path(path, "pattern"), "must be a regular expression string")
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.add(child_path(path, "pattern"), f"is not a valid regular expression: {exc}")
        return None
    return {"pattern": pattern}


def _no_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    return {}


def _option_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """An option's ``choices``: a non-empty list of strings or numbers (a repeated one is
    reported; ``"1"`` and ``1`` are different choices)."""
    choices = raw.get("choices")
    cpath = child_path(path, "choices")
    if choices is None:
        problems.add(cpath, "is required for an option: a non-empty list of strings")
        return None
    if not isinstance(choices, list) or not choices:
        problems.add(cpath, "must be a non-empty list of strings")
        return None
    usable = True
    seen: set[tuple[bool, Any]] = set()
    for index, choice in enumerate(choices):
        if not isinstance(choice, str) and not _is_number(choice):
            problems.add(
                child_path(cpath, index), f"must be a string or a number, not {_fmt(choice)}"
            )
            usable = False
        elif (type(choice) is str, choice) in seen:
            problems.add(child_path(cpath, index), f"duplicate choice {choice!r}")
        else:
            seen.add((type(choice) is str, choice))
    return {"choices": list(choices)} if usable else None


def _file_types(file_types: Any, fpath: str, problems: _Problems) -> list[str] | None:
    """The file types a file input accepts, in FILE_TYPES order (all of them when not given)."""
    if file_types is None:
        return list(FILE_TYPES)
    if not isinstance(file_types, list) or not file_types:
        problems.add(fpath, f"must be a non-empty list drawn from {list(FILE_TYPES)}")
        return None
    usable = True
    for index, file_type in enumerate(file_types):
        if file_type not in FILE_TYPES:
            problems.add(
                child_path(fpath, index),
                f"unknown file type {_fmt(file_type)}; expected one of {list(FILE_TYPES)}",
            )
            usable = False
        elif file_type in file_types[:index]:
            problems.add(child_path(fpath, index), f"duplicate file type {file_type!r}")
    return [t for t in FILE_TYPES if t in file_types] if usable else None


def _file_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """A file's ``file_types``, and (not for a list's items) whether it takes ``many`` files."""
    file_types = _file_types(raw.get("file_types"), child_path(path, "file_types"), problems)
    out: dict[str, Any] = {"file_types": file_types}
    if not in_list:
        many = raw.get("many", False)
        if not isinstance(many, bool):
            problems.add(child_path(path, "many"), "must be true or false")
            many = False
        out["many"] = many
    return out if file_types is not None else None


def _list_constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """A list's ``items``: one scalar or file type, with that type's own constraints."""
    items = raw.get("items")
    ipath = child_path(path, "items")
    if not isinstance(items, Mapping):
        problems.add(ipath, 'is required for a list: an object like {"type": "string"}')
        return None
    item_kind = items.get("type")
    allowed = (*SCALAR_TYPES, "file")
    if item_kind not in allowed:
        problems.add(
            child_path(ipath, "type"),
            f"unknown item type {_fmt(item_kind)}; expected one of {list(allowed)}"
            if item_kind is not None
            else f"is required; one of {list(allowed)}",
        )
        return None
    item_allowed = {"type"} | _CONSTRAINT_KEYS[item_kind]
    if item_kind == "file":
        item_allowed.discard("many")
    _unknown_keys(items, item_allowed, ipath, problems, f"a list of {item_kind}")
    item = _constraints(items, item_kind, ipath, problems, in_list=True)
    return {"items": item} if item is not None else None


class _ConstraintCheck(Protocol):
    def __call__(
        self, raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
    ) -> dict[str, Any] | None: ...


# Which keys qualify each input type, and how they are checked (see _CONSTRAINT_KEYS).
_CONSTRAINT_CHECKS: dict[str, _ConstraintCheck] = {
    "integer": _number_constraints,
    "float": _number_constraints,
    "string": _string_constraints,
    "boolean": _no_constraints,
    "option": _option_constraints,
    "file": _file_constraints,
    "list": _list_constraints,
    **{kind: _no_constraints for kind in ELEMENT_INPUT_TYPES},
}


def _constraints(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems, *, in_list: bool
) -> dict[str, Any] | None:
    """Check the keys that qualify a type; return them normalized (``None`` if unusable)."""
    fields = _CONSTRAINT_CHECKS[kind](raw, kind, path, problems, in_list=in_list)
    return {"type": kind, **fields} if fields is not None else None


def _input_kind(raw: Mapping[str, Any], path: str, problems: _Problems) -> str | None:
    """The input's ``type``, when it names one of INPUT_TYPES."""
    kind = raw.get("type")
    if kind is None:
        problems.add(child_path(path, "type"), f"is required; one of {list(INPUT_TYPES)}")
        return None
    if kind not in INPUT_TYPES:
        problems.add(
            child_path(path, "type"),
            f"unknown type {_fmt(kind)}; expected one of {list(INPUT_TYPES)}",
        )
        return None
    return str(kind)


def _input_default(
    raw: Mapping[str, Any], kind: str, typed: dict[str, Any] | None, path: str, problems: _Problems
) -> Any:
    """The input's ``default``, normalized: none for files, else a value its type accepts."""
    default = raw.get("default")
    if default is None:
        return None
    dpath = child_path(path, "default")
    items = raw.get("items")
    takes_files = kind == "file" or (isinstance(items, Mapping) and items.get("type") == "file")
    if takes_files:
        problems.add(dpath, "a file input can't have a default")
        return None
    if typed is None:
        return default
    for message in value_errors(typed, default):
        problems.add(dpath, f"the default {message}" if message[0].islower() else message)
    return _normalize_value(typed, default)


def _input_required(raw: Mapping[str, Any], default: Any, path: str, problems: _Problems) -> bool:
    """Whether the input must be given: as written, else true unless it has a default."""
    required = raw.get("required")
    if required is None:
        return default is None
    if not isinstance(required, bool):
        problems.add(child_path(path, "required"), "must be true or false")
        return default is None
    if required and default is not None:
        problems.add(
            child_path(path, "required"),
            "a required input can't have a default (the default would never be used): "
            "drop one of them",
        )
    return required


def _infinity(raw: Any, path: str, problems: _Problems) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        problems.add(path, 'must be a list of the strings meaning infinity (like "++inf++")')
        return []
    return list(raw)


def _webmev_keys(raw: Mapping[str, Any], path: str, problems: _Problems) -> dict[str, Any]:
    """``render`` and ``wdl_input``/``wdl_output``: what a WebMEV operation's conversion adds."""
    out: dict[str, Any] = {}
    render = raw.get("render")
    if render is not None and render not in RENDER_STYLES:
        problems.add(child_path(path, "render"), f"must be one of {list(RENDER_STYLES)}")
    elif render is not None:
        out["render"] = render
    for key in ("wdl_input", "wdl_output"):
        _engine_name(raw, key, path, problems, out)
    if "webmev" in raw:
        out["webmev"] = raw["webmev"]
    return out


_FQN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+$")


def _engine_name(
    raw: Mapping[str, Any], key: str, path: str, problems: _Problems, out: dict[str, Any]
) -> None:
    """``wdl_input`` / ``wdl_output``: the fully qualified WDL name (``Workflow.x``) the input
    or output stands for, when it isn't ``<workflow>.<name>`` (WebMEV Cromwell operations)."""
    if key not in raw:
        return
    value = raw[key]
    if not isinstance(value, str) or not _FQN_RE.match(value):
        problems.add(child_path(path, key), "must be a WDL name like Workflow.input")
        return
    out[key] = value


def _input(
    raw: Any, path: str, problems: _Problems, *, mode: Any = "docker"
) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.add(path, 'must be an object like {"type": "integer"}')
        return None
    if mode == "wdl" and _is_structured_input(raw):
        return _structured_input(raw, path, problems)
    kind = _input_kind(raw, path, problems)
    if kind is None:
        return None
    _unknown_keys(raw, _INPUT_COMMON_KEYS | _CONSTRAINT_KEYS[kind], path, problems, f"a {kind}")
    description = _string(raw, "description", path, problems, default="")
    typed = _constraints(raw, kind, path, problems, in_list=False)
    default = _input_default(raw, kind, typed, path, problems)
    required = _input_required(raw, default, path, problems)
    if typed is None:
        return None
    out = {**typed, "description": description or "", "required": required, "default": default}
    out.update(_webmev_keys(raw, path, problems))
    return out


def _output_kind(
    raw: Mapping[str, Any], path: str, problems: _Problems, kinds: tuple[str, ...]
) -> str | None:
    """The output's ``type``, when it is one of ``kinds`` (the structured ones only for WDL)."""
    kind = raw.get("type")
    if kind in kinds:
        return str(kind)
    if kind in OUTPUT_TYPES:
        problems.add(
            child_path(path, "type"),
            f"{kind} outputs are for WDL operations; use one of {list(kinds)}",
        )
    else:
        problems.add(
            child_path(path, "type"),
            f"unknown output type {_fmt(kind)}; expected one of {list(kinds)}"
            if kind is not None
            else f"is required; one of {list(kinds)}",
        )
    return None


def _file_output(raw: Mapping[str, Any], path: str, problems: _Problems) -> dict[str, Any] | None:
    """A file output's ``file_type``: one of FILE_TYPES."""
    file_type = raw.get("file_type")
    if file_type not in FILE_TYPES:
        problems.add(
            child_path(path, "file_type"),
            f"must be one of {list(FILE_TYPES)}"
            + (f", not {_fmt(file_type)}" if file_type is not None else ""),
        )
        return None
    return {"file_type": file_type}


def _scalar_list_output(
    raw: Mapping[str, Any], path: str, problems: _Problems
) -> dict[str, Any] | None:
    """A docker operation's list output: its ``items`` are one scalar or file type."""
    items = raw.get("items")
    ipath = child_path(path, "items")
    if not isinstance(items, Mapping) or items.get("type") not in OUTPUT_SCALAR_TYPES:
        problems.add(ipath, f"must be an object whose type is one of {list(OUTPUT_SCALAR_TYPES)}")
        return None
    item = _output_shape(items, ipath, problems, structured=False, top=False)
    return {"items": item} if item is not None else None


def _nested_output(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems
) -> dict[str, Any] | None:
    """A WDL list, map or pair: each of its keys (``items``; ``values``; ``left``, ``right``)
    holds any output type. Stops at the first one that is unusable."""
    out: dict[str, Any] = {}
    for key in _OUTPUT_SHAPE_KEYS[kind]:
        inner = _output_shape(
            raw.get(key), child_path(path, key), problems, structured=True, top=False
        )
        if inner is None:
            return None
        out[key] = inner
    return out


def _struct_output(raw: Mapping[str, Any], path: str, problems: _Problems) -> dict[str, Any] | None:
    """A WDL struct's ``members``: identifiers mapped to any output type (every one checked)."""
    members = raw.get("members")
    mpath = child_path(path, "members")
    if not isinstance(members, Mapping) or not members:
        problems.add(mpath, "must be an object mapping member names to their types")
        return None
    shapes: dict[str, Any] = {}
    usable = True
    for member, member_raw in members.items():
        if not isinstance(member, str) or not IDENTIFIER_RE.match(member):
            problems.add(child_path(mpath, member), "is not a valid member name")
            usable = False
            continue
        inner = _output_shape(
            member_raw, child_path(mpath, member), problems, structured=True, top=False
        )
        if inner is None:
            usable = False
            continue
        shapes[member] = inner
    return {"members": shapes} if usable else None


# --- structured inputs (WDL operations): shapes as in wdl/input_shapes.py -----------------------

_INPUT_SHAPE_KEYS: dict[str, tuple[str, ...]] = {
    "integer": (),
    "float": (),
    "string": (),
    "boolean": (),
    "file": ("file_types",),
    "list": ("items",),
    "map": ("values",),
    "pair": ("left", "right"),
    "struct": ("members",),
}
_STRUCTURED_KINDS = ("list", "map", "pair", "struct")
_MAP_KEY_TYPES = ("string", "integer", "float", "boolean")  # a map's keys, as JSON object keys


def _is_structured_input(raw: Mapping[str, Any]) -> bool:
    """A map, pair or struct input, or a list of those, of lists, or of optional items."""
    kind = raw.get("type")
    if kind in ("map", "pair", "struct"):
        return True
    items = raw.get("items")
    return (
        kind == "list"
        and isinstance(items, Mapping)
        and (items.get("type") in _STRUCTURED_KINDS or "optional" in items)
    )


def _input_shape_kind(raw: Any, path: str, problems: _Problems) -> str | None:
    """The ``type`` of one structured input shape, when it is one of _INPUT_SHAPE_KEYS."""
    kinds = list(_INPUT_SHAPE_KEYS)
    if not isinstance(raw, Mapping):
        problems.add(path, 'must be an object like {"type": "string"}')
        return None
    kind = raw.get("type")
    if kind not in _INPUT_SHAPE_KEYS:
        problems.add(
            child_path(path, "type"),
            f"unknown type {_fmt(kind)}; expected one of {kinds}"
            if kind is not None
            else f"is required; one of {kinds}",
        )
        return None
    return str(kind)


def _nested_input_shape(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems
) -> dict[str, Any] | None:
    """A list's ``items``, a map's ``values`` (and ``keys`` type) or a pair's sides."""
    out: dict[str, Any] = {}
    keys = raw.get("keys", "string") if kind == "map" else "string"
    if keys not in _MAP_KEY_TYPES:
        problems.add(child_path(path, "keys"), f"must be one of {list(_MAP_KEY_TYPES)}")
        return None
    if keys != "string":
        out["keys"] = keys
    for key in _INPUT_SHAPE_KEYS[kind]:
        inner = _input_shape(raw.get(key), child_path(path, key), problems, top=False)
        if inner is None:
            return None
        out[key] = inner
    return out


def _struct_input_shape(
    raw: Mapping[str, Any], path: str, problems: _Problems
) -> dict[str, Any] | None:
    """A struct's ``members``: identifiers mapped to any input shape."""
    members = raw.get("members")
    mpath = child_path(path, "members")
    if not isinstance(members, Mapping) or not members:
        problems.add(mpath, "must be an object mapping member names to their types")
        return None
    out: dict[str, Any] = {}
    for member, member_raw in members.items():
        if not isinstance(member, str) or not IDENTIFIER_RE.match(member):
            problems.add(child_path(mpath, member), "is not a valid member name")
            return None
        inner = _input_shape(member_raw, child_path(mpath, member), problems, top=False)
        if inner is None:
            return None
        out[member] = inner
    return {"members": out}


def _input_shape_parts(
    raw: Mapping[str, Any], kind: str, path: str, problems: _Problems
) -> dict[str, Any] | None:
    """What a shape holds besides its type: file types, nested shapes or struct members."""
    if kind == "file":
        checked = _constraints(raw, "file", path, problems, in_list=True)
        return None if checked is None else {"file_types": checked["file_types"]}
    if kind in ("list", "map", "pair"):
        return _nested_input_shape(raw, kind, path, problems)
    if kind == "struct":
        return _struct_input_shape(raw, path, problems)
    return {}


def _input_shape(raw: Any, path: str, problems: _Problems, *, top: bool) -> dict[str, Any] | None:
    """One structured input type (the input itself, or what it holds), at any depth."""
    kind = _input_shape_kind(raw, path, problems)
    if kind is None:
        return None
    allowed = {"type", *_INPUT_SHAPE_KEYS[kind], *(("keys",) if kind == "map" else ())}
    allowed |= _INPUT_COMMON_KEYS if top else {"optional"}
    what = f"a {kind} input" if top else f"a {kind} inside an input"
    _unknown_keys(raw, allowed, path, problems, what)
    out: dict[str, Any] = {"type": kind}
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        problems.add(child_path(path, "optional"), "must be true or false")
    elif optional and not top:
        out["optional"] = True
    parts = _input_shape_parts(raw, kind, path, problems)
    if parts is None:
        return None
    return {**out, **parts}


def _structured_input(
    raw: Mapping[str, Any], path: str, problems: _Problems
) -> dict[str, Any] | None:
    """A map, pair or struct input of a WDL operation, or a list of lists (docker operations take
    flat inputs only: there such types are unknown)."""
    shape = _input_shape(raw, path, problems, top=True)
    description = _string(raw, "description", path, problems, default="")
    if raw.get("default") is not None:
        problems.add(
            child_path(path, "default"),
            "a structured input takes no default here: leave it out and the workflow's own "
            "default applies",
        )
    required = raw.get("required", True)
    if not isinstance(required, bool):
        problems.add(child_path(path, "required"), "must be true or false")
        required = True
    if shape is None:
        return None
    return {**shape, "description": description or "", "required": required, "default": None}


def _output_shape(
    raw: Any, path: str, problems: _Problems, *, structured: bool, top: bool
) -> dict[str, Any] | None:
    """One output type (the output itself, or what a list/map/pair/struct holds). Lists hold
    one scalar or file type, unless ``structured`` (WDL operations): then any output type,
    at any depth."""
    kinds = OUTPUT_TYPES if structured else (*OUTPUT_SCALAR_TYPES, "list")
    if not isinstance(raw, Mapping):
        problems.add(path, 'must be an object like {"type": "file", "file_type": "table"}')
        return None
    kind = _output_kind(raw, path, problems, kinds)
    if kind is None:
        return None
    allowed = {"type", *_OUTPUT_SHAPE_KEYS[kind]}
    what = f"a {kind} output" if top else f"a {kind} inside an output"
    _unknown_keys(raw, (_OUTPUT_COMMON_KEYS | allowed) if top else allowed, path, problems, what)
    fields: dict[str, Any] | None = {}
    if kind == "file":
        fields = _file_output(raw, path, problems)
    elif kind == "list" and not structured:
        fields = _scalar_list_output(raw, path, problems)
    elif kind in ("list", "map", "pair"):
        fields = _nested_output(raw, kind, path, problems)
    elif kind == "struct":
        fields = _struct_output(raw, path, problems)
    return {"type": kind, **fields} if fields is not None else None


def _output(raw: Any, path: str, problems: _Problems, *, mode: Any) -> dict[str, Any] | None:
    out = _output_shape(raw, path, problems, structured=mode == "wdl", top=True)
    if out is None:
        return None
    description = _string(raw, "description", path, problems, default="")
    required = raw.get("required", True)
    if not isinstance(required, bool):
        problems.add(child_path(path, "required"), "must be true or false")
        required = True
    out.update(description=description or "", required=required)
    out.update(_webmev_keys(raw, path, problems))
    return out


def _resources(raw: Any, path: str, problems: _Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(path, f"must be an object with some of {list(RESOURCE_KEYS)}")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kpath = child_path(path, key)
        if key not in RESOURCE_KEYS:
            problems.add(kpath, f"unknown resource; expected one of {list(RESOURCE_KEYS)}")
        elif key == "cpus":
            if not _is_number(value) or value <= 0:
                problems.add(kpath, f"must be a positive number, not {_fmt(value)}")
            else:
                out[key] = float(value)
        elif not _is_int(value) or value <= 0:
            problems.add(kpath, f"must be a positive integer, not {_fmt(value)}")
        else:
            out[key] = value
    return out


def placeholders(command: str) -> list[str]:
    """The input names a command template refers to, in order (repeats included)."""
    return [m.group(1) for m in PLACEHOLDER_RE.finditer(command)]


def _quoted_positions(command: str) -> set[int]:
    """Offsets in ``command`` that sit inside shell quotes (single or double)."""
    inside: set[int] = set()
    quote: str | None = None
    index = 0
    while index < len(command):
        char = command[index]
        if quote is None:
            if char == "\\":
                index += 2
                continue
            if char in ("'", '"'):
                quote = char
        elif char == quote:
            quote = None
        elif quote == '"' and char == "\\":
            inside.update((index, index + 1))
            index += 2
            continue
        else:
            inside.add(index)
        index += 1
    return inside


def command_problems(command: str, input_names: Iterable[str]) -> list[str]:
    """What is wrong with a command template, given the inputs it may refer to."""
    names = set(input_names)
    out: list[str] = []
    if "{%" in command or "{#" in command:
        out.append(
            "template statements and comments ({% … %}, {# … #}) are not supported; "
            "only {{ name }} placeholders"
        )
    quoted = _quoted_positions(command)
    for match in _ANY_BRACES_RE.finditer(command):
        inner = match.group(1).strip()
        if not IDENTIFIER_RE.match(inner):
            out.append(
                f"malformed placeholder {match.group(0)!r}: write {{{{ name }}}} with the name "
                "of an input (no filters or expressions)"
            )
        elif inner not in names:
            known = ", ".join(sorted(names)) or "none"
            out.append(
                f"unknown placeholder {{{{ {inner} }}}}: no input named {inner!r} (inputs: {known})"
            )
        elif match.start() in quoted:
            out.append(
                f"placeholder {{{{ {inner} }}}} is inside quotes; remove the quotes "
                "(Ferry quotes every value itself)"
            )
    rest = _ANY_BRACES_RE.sub("", command)
    if "{{" in rest or "}}" in rest:
        out.append("unbalanced braces: a placeholder is written {{ name }}")
    return out


def _check_name(name: str | None, problems: _Problems) -> None:
    if name is None:
        return
    if len(name) > NAME_MAX_LENGTH:
        problems.add("$.name", f"is longer than {NAME_MAX_LENGTH} characters")
    elif not NAME_RE.match(name):
        problems.add(
            "$.name",
            f"{name!r} is not a valid name: use lowercase letters, digits and hyphens "
            "(like 'table-summary'), starting and ending with a letter or digit",
        )


def _check_version(version: str | None, problems: _Problems) -> None:
    if version is None:
        return
    if not version:
        problems.add("$.version", "must not be empty (for example '1.0.0')")
    elif len(version) > VERSION_MAX_LENGTH:
        problems.add("$.version", f"is longer than {VERSION_MAX_LENGTH} characters")
    elif not VERSION_RE.match(version):
        problems.add(
            "$.version",
            f"{version!r} is not a valid version: use letters, digits and . _ + - "
            "(like '1.0.0'), starting with a letter or digit",
        )


def _named_specs(
    raw: Mapping[str, Any],
    section: str,
    what: str,
    problems: _Problems,
    check: Callable[[Any, str, _Problems], dict[str, Any] | None],
) -> dict[str, Any]:
    """``$.inputs`` or ``$.outputs``: each name an identifier, each spec passing ``check``.
    Returns the usable ones by name."""
    raw_specs = raw.get(section, {})
    section_path = f"$.{section}"
    if not isinstance(raw_specs, Mapping):
        problems.add(section_path, f"must be an object mapping {what} names to their specs")
        return {}
    checked_specs: dict[str, Any] = {}
    for name, spec in raw_specs.items():
        if not isinstance(name, str):
            continue  # reported with the keys
        path = child_path(section_path, name)
        if not IDENTIFIER_RE.match(name):
            problems.add(
                path,
                f"{name!r} is not a valid {what} name: use letters, digits and _ "
                "(not starting with a digit)",
            )
        checked = check(spec, path, problems)
        if checked is not None:
            checked_specs[name] = checked
    return checked_specs


def _command(
    raw: Mapping[str, Any], inputs: Mapping[str, Any], problems: _Problems
) -> tuple[str | None, str]:
    """A docker operation's command template, checked against every input name it may use, and
    its style: Ferry's ``{{ name }}`` (run by ``/bin/sh -c``) or a WebMEV Jinja template."""
    if "workflow" in raw:
        problems.add("$.workflow", "applies to WDL operations; use command for docker")
    style = raw.get("command_style", "ferry")
    if style not in COMMAND_STYLES:
        problems.add("$.command_style", f"must be one of {list(COMMAND_STYLES)}")
    command = _string(raw, "command", "$", problems)
    if command is None:
        return None, str(style)
    if not command.strip():
        problems.add("$.command", "must not be empty")
    raw_inputs = raw.get("inputs", {})
    input_names = (
        [n for n in raw_inputs if isinstance(n, str)] if isinstance(raw_inputs, Mapping) else []
    )
    if style == "webmev":
        optional = [n for n, i in inputs.items() if not i["required"] and i["default"] is None]
        messages = template_problems(command, input_names, optional=optional, source_name="command")
    else:
        messages = command_problems(command, input_names)
    for message in messages:
        problems.add("$.command", message)
    return command, str(style)


def _workflow(raw: Mapping[str, Any], problems: _Problems) -> str | None:
    """A WDL operation's workflow file (it has no command)."""
    if "command" in raw:
        problems.add("$.command", "applies to docker operations; a WDL operation runs its workflow")
    return _string(raw, "workflow", "$", problems, default="main.wdl")


def _safe_to_retry(raw: Mapping[str, Any], problems: _Problems) -> bool:
    safe_to_retry = raw.get("safe_to_retry", False)
    if not isinstance(safe_to_retry, bool):
        problems.add("$.safe_to_retry", f"must be true or false, not {_fmt(safe_to_retry)}")
    return safe_to_retry is True


def check_spec(raw: Any, *, source_name: str = "operation.json") -> dict[str, Any]:
    """Check an already-loaded document and return it normalized; raise :class:`SpecError`."""
    problems = _Problems()
    if not isinstance(raw, Mapping):
        problems.add("$", "the spec must be an object (a JSON/YAML mapping)")
        raise SpecError(problems.items, source_name=source_name)
    _check_keys_and_duplicates(raw, "$", problems)
    _unknown_keys(raw, _TOP_KEYS, "$", problems, "an operation")

    name = _string(raw, "name", "$", problems)
    _check_name(name, problems)
    version = _string(raw, "version", "$", problems)
    _check_version(version, problems)
    description = _string(raw, "description", "$", problems, default="")
    mode = raw.get("mode", "docker")
    if mode not in MODES:
        problems.add("$.mode", f"unknown mode {_fmt(mode)}; expected one of {list(MODES)}")
    inputs = _named_specs(raw, "inputs", "input", problems, functools.partial(_input, mode=mode))
    outputs = _named_specs(
        raw, "outputs", "output", problems, functools.partial(_output, mode=mode)
    )

    out: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": description or "",
        "mode": mode,
    }
    if mode == "wdl":
        out["workflow"] = _workflow(raw, problems)
    else:
        out["command"], style = _command(raw, inputs, problems)
        if style == "webmev":
            out["command_style"] = style
    out["resources"] = _resources(raw.get("resources"), "$.resources", problems)
    out["safe_to_retry"] = _safe_to_retry(raw, problems)
    out["inputs"] = inputs
    out["outputs"] = outputs
    if "webmev" in raw:
        out["webmev"] = raw["webmev"]
    if problems:
        raise SpecError(problems.items, source_name=source_name)
    # Plain JSON types only (no loader subclasses), ready for a JSONField.
    plain: dict[str, Any] = json.loads(json.dumps(out))
    return plain


def parse_spec(
    raw: bytes | str | Mapping[str, Any], *, source_name: str = "operation.json"
) -> dict[str, Any]:
    """Parse a Ferry operation spec (JSON, or YAML when ``source_name`` ends in .yaml/.yml) and
    return it normalized, every default filled in. Raises :class:`SpecError` listing every
    problem found, each with its JSON path (``$.inputs.min_rows.default``)."""
    return check_spec(load_document(raw, source_name=source_name), source_name=source_name)


# --- rendering ------------------------------------------------------------------------------------


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return shlex.quote(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"can't render the number {value!r}")
        return shlex.quote(repr(value))
    if isinstance(value, str):
        return shlex.quote(value)
    if isinstance(value, list | tuple):
        parts = []
        for item in value:
            if isinstance(item, list | tuple | dict) or item is None:
                raise ValueError(f"can't render the list item {item!r}")
            parts.append(_render_value(item))
        return " ".join(parts)
    raise ValueError(f"can't render a value of type {type(value).__name__}")


def _render_placeholder(inputs: Mapping[str, Any], values: Mapping[str, object], name: str) -> str:
    """The shell-quoted text that replaces ``{{ name }}``."""
    if name not in inputs:
        raise ValueError(f"the command refers to {name!r}, which is not an input")
    value = values.get(name)
    if value is None:
        value = inputs[name].get("default")
    if value is None:
        if inputs[name].get("required", True):
            raise ValueError(f"the required input {name!r} has no value")
        return ""
    if inputs[name].get("type") in ELEMENT_INPUT_TYPES:
        if not isinstance(value, Mapping):
            raise ValueError(f"the input {name!r} is not an observation or feature value")
        return shlex.quote(",".join(element_ids(value)))
    return _render_value(value)


def render_command(spec: Mapping[str, Any], values: Mapping[str, object]) -> str:
    """Fill a docker operation's command template with shell-quoted values.

    ``values`` maps input names to validated values (file inputs: container paths). Inputs left
    out (or ``None``) take their default; an optional input with neither renders as nothing.
    Raises ``ValueError`` for a required input without a value or a name the spec doesn't have.
    """
    inputs: Mapping[str, Any] = spec.get("inputs") or {}
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ValueError(f"no such inputs: {', '.join(unknown)}")
    command = spec.get("command")
    if not isinstance(command, str):
        raise ValueError("the spec has no command to render")
    if spec.get("command_style", "ferry") != "ferry":
        raise ValueError("the command is a WebMEV (Jinja) template: render it with render_argv")

    rendered = PLACEHOLDER_RE.sub(
        lambda match: _render_placeholder(inputs, values, match.group(1)), command
    )
    size = len(rendered.encode())
    if size > MAX_COMMAND_BYTES:
        raise ValueError(
            f"the command is {size} bytes long once filled in; a command line holds at most "
            f"{MAX_COMMAND_BYTES} (pass large values, such as big sets, as files)"
        )
    return rendered
