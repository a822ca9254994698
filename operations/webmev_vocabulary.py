"""WebMEV's vocabulary: attribute types, resource type codes and converters, as WebMEV spells
them (``mev-backend``: ``data_structures/``, ``constants.py``, ``api/converters/``).

:func:`ferry_type` maps one attribute spec (``{"attribute_type": "BoundedInteger", "min": 0,
"max": 5, "default": 3}``) to a Ferry input or output type, refusing what WebMEV refuses:
unknown types, keys the type doesn't take, missing keys, defaults that don't fit the type.
:func:`converter_render` says how a converter renders a value (see ``operations.templates``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from api.filetypes import RESOURCE_TYPE_FILE_TYPES as RESOURCE_TYPE_FILE_TYPES

from .spec import FILE_TYPES, child_path

# --- resource types (mev/constants.py) ------------------------------------------------------------

# The 19 codes WebMEV knows (api.filetypes: a file records its own).

# --- attribute types (mev/data_structures/) -------------------------------------------------------

_INTEGER_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "Integer": (None, None),
    "PositiveInteger": (1, None),
    "NonNegativeInteger": (0, None),
}
# "Positive" excludes 0; Ferry's bounds are inclusive and the smallest positive float is an exact
# inclusive bound for "> 0".
_FLOAT_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "Float": (None, None),
    "PositiveFloat": (math.ulp(0.0), None),
    "NonNegativeFloat": (0.0, None),
}
# Infinity, as WebMEV writes it in a value.
POSITIVE_INFINITY, NEGATIVE_INFINITY = "++inf++", "--inf--"
_INFINITY_MARKERS = {
    "Float": [POSITIVE_INFINITY, NEGATIVE_INFINITY],
    "PositiveFloat": [POSITIVE_INFINITY],
    "NonNegativeFloat": [POSITIVE_INFINITY],
}
# A WebMEV String: normalized (stripped, spaces → "_") it must be made of these, 100 at most.
STRING_PATTERN = r"^\s*[:_.\-a-zA-Z0-9 ]{0,100}\s*$"
UNRESTRICTED_STRING_PATTERN = r"^[\s\S]{0,1000}$"
_OPTION_TYPES = {"OptionString", "IntegerOption", "FloatOption", "MixedOption"}
_LIST_TYPES = {"StringList", "UnrestrictedStringList", "BoundedIntegerList", "BoundedFloatList"}
_RESOURCE_TYPES = {"DataResource", "VariableDataResource", "OperationDataResource"}
ELEMENT_TYPES = {
    "ObservationSet": "observation_set",
    "FeatureSet": "feature_set",
    "Observation": "observation",
    "Feature": "feature",
}

# Spec keys each attribute type takes besides attribute_type and default.
ATTRIBUTE_KEYS: dict[str, frozenset[str]] = {
    **dict.fromkeys(_INTEGER_BOUNDS, frozenset()),
    **dict.fromkeys(_FLOAT_BOUNDS, frozenset()),
    "BoundedInteger": frozenset({"min", "max"}),
    "BoundedFloat": frozenset({"min", "max"}),
    "String": frozenset(),
    "UnrestrictedString": frozenset(),
    "Boolean": frozenset(),
    **dict.fromkeys(_OPTION_TYPES, frozenset({"options", "many"})),
    "StringList": frozenset(),
    "UnrestrictedStringList": frozenset(),
    "BoundedIntegerList": frozenset({"min", "max"}),
    "BoundedFloatList": frozenset({"min", "max"}),
    "DataResource": frozenset({"many", "resource_type"}),
    "OperationDataResource": frozenset({"many", "resource_type"}),
    "VariableDataResource": frozenset({"many", "resource_types"}),
    **dict.fromkeys(ELEMENT_TYPES, frozenset()),
}
_REQUIRED_KEYS = {
    "BoundedInteger": ("min", "max"),
    "BoundedFloat": ("min", "max"),
    "BoundedIntegerList": ("min", "max"),
    "BoundedFloatList": ("min", "max"),
    **dict.fromkeys(_OPTION_TYPES, ("options",)),
    "DataResource": ("many", "resource_type"),
    "OperationDataResource": ("many", "resource_type"),
    "VariableDataResource": ("many", "resource_types"),
}
_OLD_SPELLINGS = {
    "NonnegativeInteger": "NonNegativeInteger",
    "NonnegativeFloat": "NonNegativeFloat",
}


class Problems:
    """Collects problems by path while a WebMEV spec is converted."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)


def webmev_bool(value: Any) -> bool | None:
    """WebMEV's Boolean: true/false, "true"/"false" (any case), 0/1; None if it is none."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


# --- checking one attribute spec ------------------------------------------------------------------


def _check_keys(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> bool:
    allowed = ATTRIBUTE_KEYS[kind] | {"attribute_type", "default"}
    usable = True
    for key in spec:
        if key not in allowed:
            hint = ""
            if key == "resource_types" and kind != "VariableDataResource":
                hint = ' (a DataResource names one "resource_type"; use VariableDataResource for several)'
            elif key == "resource_type" and kind == "VariableDataResource":
                hint = ' (a VariableDataResource lists "resource_types")'
            takes = ", ".join(sorted(ATTRIBUTE_KEYS[kind])) or "nothing else"
            problems.add(
                child_path(path, key),
                f"a {kind} does not take {key!r}{hint}; it takes attribute_type, default, {takes}",
            )
            usable = False
    for key in _REQUIRED_KEYS.get(kind, ()):
        if key not in spec:
            problems.add(child_path(path, key), f"is required for a {kind}")
            usable = False
    return usable


def _bounds(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> tuple[Any, Any]:
    integer = "Integer" in kind
    check, what = (_is_int, "an integer") if integer else (_is_number, "a number")
    low: Any = spec.get("min")
    high: Any = spec.get("max")
    for key, value in (("min", low), ("max", high)):
        if not check(value):
            problems.add(child_path(path, key), f"must be {what}, not {value!r}")
            return None, None
    if low > high:
        problems.add(child_path(path, "min"), f"min ({low}) is greater than max ({high})")
        return None, None
    return low, high


def _numeric(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    if kind in _INTEGER_BOUNDS:
        low, high = _INTEGER_BOUNDS[kind]
        return {"type": "integer", "min": low, "max": high}
    if kind in _FLOAT_BOUNDS:
        low_f, high_f = _FLOAT_BOUNDS[kind]
        return {"type": "float", "min": low_f, "max": high_f, "infinity": _INFINITY_MARKERS[kind]}
    low, high = _bounds(kind, spec, path, problems)
    if low is None:
        return {}
    if kind == "BoundedFloat":
        return {"type": "float", "min": float(low), "max": float(high)}
    return {"type": "integer", "min": low, "max": high}


def _fits_option(kind: str, option: Any) -> bool:
    if kind == "OptionString":
        return isinstance(option, str)
    if kind == "IntegerOption":
        return _is_int(option)
    if kind == "FloatOption":
        return _is_number(option)
    return isinstance(option, str) or _is_number(option)  # MixedOption


def _options(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    options = spec.get("options")
    opath = child_path(path, "options")
    if not isinstance(options, list) or not options:
        problems.add(opath, "must be a non-empty list of the options")
        return {}
    bad = [index for index, option in enumerate(options) if not _fits_option(kind, option)]
    for index in bad:
        problems.add(child_path(opath, index), f"{options[index]!r} is not a valid {kind} option")
    many = webmev_bool(spec.get("many", False))
    if many is None:
        problems.add(child_path(path, "many"), "must be true or false")
    if bad or many is None:
        return {}
    option = {"type": "option", "choices": list(options)}
    return {"type": "list", "items": option} if many else option


def _list(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    if kind == "StringList":
        return {"type": "list", "items": {"type": "string", "pattern": STRING_PATTERN}}
    if kind == "UnrestrictedStringList":
        return {"type": "list", "items": {"type": "string", "pattern": UNRESTRICTED_STRING_PATTERN}}
    low, high = _bounds(kind, spec, path, problems)
    if low is None:
        return {}
    item = "integer" if kind == "BoundedIntegerList" else "float"
    if item == "float":
        low, high = float(low), float(high)
    return {"type": "list", "items": {"type": item, "min": low, "max": high}}


def resource_file_types(codes: Any, path: str, problems: Problems) -> list[str] | None:
    """The Ferry file types WebMEV resource type codes allow; unknown codes are named."""
    if not isinstance(codes, list) or not codes:
        problems.add(path, "must be a non-empty list of WebMEV resource types")
        return None
    unknown = [c for c in codes if not isinstance(c, str) or c not in RESOURCE_TYPE_FILE_TYPES]
    if unknown:
        known = ", ".join(RESOURCE_TYPE_FILE_TYPES)
        problems.add(
            path,
            f"not valid WebMEV resource types: {', '.join(map(str, unknown))} (known: {known})",
        )
        return None
    found = {t for code in codes for t in RESOURCE_TYPE_FILE_TYPES[code]}
    return [t for t in FILE_TYPES if t in found]


def _resource(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    if kind == "OperationDataResource":
        problems.add(
            child_path(path, "attribute_type"),
            "OperationDataResource (a file shipped with the operation) is not supported",
        )
        return {}
    key = "resource_types" if kind == "VariableDataResource" else "resource_type"
    codes = spec.get(key)
    if key == "resource_types" and not isinstance(codes, list):
        problems.add(child_path(path, key), "must be a list of WebMEV resource types")
        return {}
    if key == "resource_type" and not isinstance(codes, str):
        problems.add(child_path(path, key), "must be one WebMEV resource type (a string)")
        return {}
    file_types = resource_file_types(
        codes if isinstance(codes, list) else [codes], child_path(path, key), problems
    )
    many = webmev_bool(spec.get("many"))
    if many is None:
        problems.add(child_path(path, "many"), "must be true or false")
    if file_types is None or many is None:
        return {}
    return {"type": "file", "file_types": file_types, "many": many}


def _simple(kind: str) -> dict[str, Any]:
    if kind == "String":
        return {"type": "string", "pattern": STRING_PATTERN}
    if kind == "UnrestrictedString":
        return {"type": "string", "pattern": UNRESTRICTED_STRING_PATTERN}
    if kind == "Boolean":
        return {"type": "boolean"}
    return {"type": ELEMENT_TYPES[kind]}


def attribute_kind(spec: Any, path: str, problems: Problems) -> str | None:
    """The spec's attribute type, if it is one WebMEV knows (else the problem is reported)."""
    if not isinstance(spec, Mapping):
        problems.add(path, 'must be an object like {"attribute_type": "Integer"}')
        return None
    kind = spec.get("attribute_type")
    tpath = child_path(path, "attribute_type")
    if kind is None:
        problems.add(tpath, "is required")
    elif not isinstance(kind, str) or kind not in ATTRIBUTE_KEYS:
        hint = f" (WebMEV spells it {_OLD_SPELLINGS[kind]})" if kind in _OLD_SPELLINGS else ""
        problems.add(tpath, f"unknown WebMEV attribute type {kind!r}{hint}")
    else:
        return kind
    return None


def ferry_type(kind: str, spec: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    """A Ferry input type for a WebMEV attribute spec (``{}`` when it can't be converted)."""
    if not _check_keys(kind, spec, path, problems):
        return {}
    if (
        kind in _INTEGER_BOUNDS
        or kind in _FLOAT_BOUNDS
        or kind in ("BoundedInteger", "BoundedFloat")
    ):
        return _numeric(kind, spec, path, problems)
    if kind in _OPTION_TYPES:
        return _options(kind, spec, path, problems)
    if kind in _LIST_TYPES:
        return _list(kind, spec, path, problems)
    if kind in _RESOURCE_TYPES:
        return _resource(kind, spec, path, problems)
    return _simple(kind)


def output_type(ferry: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The Ferry output type for a converted attribute (None: WebMEV has it, Ferry can't hold
    it as an output)."""
    if kind in ELEMENT_TYPES:
        return None
    if ferry["type"] == "file":
        types = ferry["file_types"]
        one = {"type": "file", "file_type": types[0] if len(types) == 1 else "binary"}
        return {"type": "list", "items": one} if ferry["many"] else one
    if ferry["type"] == "option":
        return {"type": "string"}
    if ferry["type"] == "list":
        item = ferry["items"]["type"]
        return {"type": "list", "items": {"type": "string" if item == "option" else item}}
    return {"type": ferry["type"]}


# --- defaults --------------------------------------------------------------------------------------


def _element_problem(value: Any, kind: str) -> str | None:
    if not isinstance(value, Mapping):
        return f'a {kind} value must be an object like {{"id": "S1", "attributes": {{}}}}'
    extra = sorted(set(value) - {"id", "attributes"})
    if extra:
        return f"received extra keys for a {kind}: {', '.join(extra)}"
    if "id" not in value:
        return f'a {kind} requires an "id" key'
    if not isinstance(value["id"], str) or not re.fullmatch(STRING_PATTERN, value["id"]):
        return f"the id {value['id']!r} is not a valid WebMEV identifier"
    if not isinstance(value.get("attributes", {}), Mapping):
        return "attributes must be an object"
    return None


def element_value_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a WebMEV Observation/Feature or set of them (None: it is)."""
    if kind in ("Observation", "Feature"):
        return _element_problem(value, kind)
    element = kind.removesuffix("Set")
    if not isinstance(value, Mapping):
        return f'a {kind} expects a dictionary like {{"elements": [...]}}'
    if "elements" not in value:
        return f'a {kind} requires an "elements" key'
    extra = sorted(set(value) - {"elements"})
    if extra:
        return f"received extra key(s): {', '.join(extra)}"
    if not isinstance(value["elements"], list):
        return '"elements" must be a list'
    seen: set[Any] = set()
    for index, item in enumerate(value["elements"]):
        problem = _element_problem(item, element)
        if problem:
            return f"element {index}: {problem}"
        if item["id"] in seen:
            return f"element {index}: duplicate id {item['id']!r} in the {kind}"
        seen.add(item["id"])
    return None


def normalized_default(kind: str, default: Any, path: str, problems: Problems) -> Any:
    """WebMEV's way of reading a default for ``kind`` (booleans from 0/1/"true"), checked for
    the set types (Ferry checks the other types against the converted input)."""
    if kind == "Boolean":
        flag = webmev_bool(default)
        if flag is None:
            problems.add(path, f"{default!r} is not a WebMEV Boolean (true/false, 0/1)")
        return flag
    if kind in ELEMENT_TYPES:
        problem = element_value_problem(kind, default)
        if problem:
            problems.add(path, problem)
            return None
    if kind in _RESOURCE_TYPES:
        problems.add(path, "a data resource can't have a default")
        return None
    return default


# --- converters (api/converters/) -----------------------------------------------------------------

# Converter class → (modules it lives in, how it renders an input, the attribute families it
# takes, the WebMEV mode it is for: None = any).
_SCALAR = frozenset({"number", "string", "option", "boolean", "element"})
_LISTS = frozenset({"list"})
_SETS = frozenset({"set"})
_ONE_FILE = frozenset({"file"})
_FILES = frozenset({"files", "file"})
_BA, _DR, _ES, _JS = "basic_attributes", "data_resource", "element_set", "json_converters"
INPUT_CONVERTERS: dict[str, tuple[tuple[str, ...], str, frozenset[str], str | None]] = {
    "StringConverter": ((_BA,), "normalized", frozenset({"string", "option", "element"}), None),
    "UnrestrictedStringConverter": ((_BA,), "value", _SCALAR, None),
    "NormalizingStringConverter": ((_BA,), "normalized", frozenset({"string", "option"}), None),
    "IntegerConverter": ((_BA,), "value", frozenset({"number", "option"}), None),
    "FloatConverter": ((_BA,), "value", frozenset({"number", "option"}), None),
    "BoundedFloatAttributeConverter": ((_BA,), "value", frozenset({"number"}), None),
    "OptionStringConverter": ((_BA,), "value", frozenset({"option"}), None),
    "StringListConverter": ((_BA,), "json", _LISTS, None),
    "UnrestrictedStringListConverter": ((_BA,), "json", _LISTS, None),
    "StringListToCsvConverter": ((_BA,), "csv", _LISTS, None),
    "UnrestrictedStringListToCsvConverter": ((_BA,), "csv", _LISTS, None),
    "NormalizingListToCsvConverter": ((_BA,), "normalized_csv", _LISTS, None),
    "BooleanAsIntegerConverter": ((_BA,), "bool_int", frozenset({"boolean"}), None),
    "ObservationSetCsvConverter": ((_ES,), "csv", _SETS, None),
    "FeatureSetCsvConverter": ((_ES,), "csv", _SETS, None),
    "ObservationSetListConverter": ((_ES,), "json", _SETS, None),
    "FeatureSetListConverter": ((_ES,), "json", _SETS, None),
    "LocalDockerSingleDataResourceConverter": ((_DR,), "path", _ONE_FILE, "local_docker"),
    "LocalDockerSingleVariableDataResourceConverter": ((_DR,), "path", _ONE_FILE, "local_docker"),
    "LocalDockerSingleDataResourceWithTypeConverter": (
        (_DR,),
        "path_with_type",
        _ONE_FILE,
        "local_docker",
    ),
    "LocalDockerMultipleDataResourceConverter": ((_DR,), "json", _FILES, "local_docker"),
    "LocalDockerMultipleVariableDataResourceConverter": ((_DR,), "json", _FILES, "local_docker"),
    "LocalDockerCsvResourceConverter": ((_DR,), "csv", _FILES, "local_docker"),
    "LocalDockerSpaceDelimResourceConverter": ((_DR,), "space", _FILES, "local_docker"),
    "LocalDataResourceConverter": ((_DR,), "path", _ONE_FILE, "local_docker"),
    "CromwellSingleDataResourceConverter": ((_DR,), "path", _ONE_FILE, "cromwell"),
    "CromwellSingleVariableDataResourceConverter": ((_DR,), "path", _ONE_FILE, "cromwell"),
    "CromwellMultipleDataResourceConverter": ((_DR,), "json", _FILES, "cromwell"),
    "CromwellCsvResourceConverter": ((_DR,), "csv", _FILES, "cromwell"),
    "CromwellSpaceDelimResourceConverter": ((_DR,), "space", _FILES, "cromwell"),
    "CromwellDataResourceConverter": ((_DR,), "path", _ONE_FILE, "cromwell"),
}
# Output converters: class → (modules, the attribute families it reads, mode).
_OC = "output_converters"
OUTPUT_CONVERTERS: dict[str, tuple[tuple[str, ...], frozenset[str], str | None]] = {
    **{
        name: (modules, families, mode)
        for name, (modules, _render, families, mode) in INPUT_CONVERTERS.items()
        if "Csv" not in name and "SpaceDelim" not in name and "Set" not in name
    },
    "JsonConverter": ((_JS,), frozenset({"string", "list", "file", "files", "number"}), None),
    "LocalDockerOutputConverter": ((_OC,), _FILES | _SCALAR, "local_docker"),
    "RemoteCromwellOutputConverter": ((_OC,), _FILES | _SCALAR, "cromwell"),
}
_ELSEWHERE = {
    "RemoteNextflowSingleDataResourceConverter": "WebMEV's Nextflow runner",
    "RemoteNextflowSingleVariableDataResourceConverter": "WebMEV's Nextflow runner",
    "ECSSingleDataResourceConverter": "WebMEV's AWS ECS runner",
    "ECSSingleVariableDataResourceConverter": "WebMEV's AWS ECS runner",
    "SimpleFileBasedMapConverter": "a lookup in the operation's input_mapping.json",
    "MapConverter": "a lookup in the operation's input_mapping.json",
}


# WebMEV base classes: they name no conversion (WebMEV fails the job when it runs one).
_BASE_CLASSES = {
    "BaseAttributeConverter",
    "BaseElementSetConverter",
    "ObservationSetConverter",
    "FeatureSetConverter",
    "BaseResourceConverter",
    "BaseDataResourceConverter",
    "LocalDockerDelimitedResourceConverter",
}


def attribute_family(kind: str, ferry: Mapping[str, Any]) -> str:
    """Which converters fit an attribute: number, string, option, boolean, list, file, files,
    set, element."""
    if kind in ("ObservationSet", "FeatureSet"):
        return "set"
    if kind in ELEMENT_TYPES:
        return "element"
    if ferry.get("type") == "file":
        return "files" if ferry.get("many") else "file"
    kind_of_value = str(ferry.get("type", ""))
    return "number" if kind_of_value in ("integer", "float") else kind_of_value


def _class_name(converter: Any) -> tuple[str | None, str | None, str | None]:
    """(class, module, problem) for a converter string: ``api.converters.<module>.<Class>`` or a
    bare class name."""
    if not isinstance(converter, str) or not converter:
        return None, None, "must be a converter class name (api.converters.<module>.<Class>)"
    parts = converter.split(".")
    if len(parts) == 1:
        return parts[0], None, None
    if len(parts) != 4 or parts[:2] != ["api", "converters"]:
        return (
            None,
            None,
            f"{converter!r} is not a WebMEV converter (api.converters.<module>.<Class>)",
        )
    return parts[3], parts[2], None


def converter_problem(
    converter: Any, *, family: str, mode: str | None, output: bool
) -> tuple[str | None, str | None]:
    """(render style for inputs, problem) for a converter on an attribute of ``family``."""
    name, module, problem = _class_name(converter)
    if problem or name is None:
        return None, problem
    table: Mapping[str, tuple[Any, ...]] = OUTPUT_CONVERTERS if output else INPUT_CONVERTERS
    if name in _BASE_CLASSES:
        return None, f"{name} is a WebMEV base class that converts nothing; name a converter"
    if name in _ELSEWHERE:
        return None, f"{name} is for {_ELSEWHERE[name]}, which Ferry doesn't support"
    if name not in table:
        what = "output" if output else "input"
        other = INPUT_CONVERTERS if output else OUTPUT_CONVERTERS
        hint = (
            f" ({name} converts {'inputs' if output else 'outputs'} only)" if name in other else ""
        )
        return None, f"unknown WebMEV {what} converter {converter!r}{hint}"
    entry = table[name]
    modules, families, for_mode = entry[0], entry[-2], entry[-1]
    if module is not None and module not in modules:
        return None, f"{name} lives in api.converters.{modules[0]}, not api.converters.{module}"
    if for_mode is not None and mode is not None and for_mode != mode:
        return None, f"{name} is for {for_mode} operations, not {mode} ones"
    if family not in families:
        return None, f"{name} does not convert this kind of value ({family})"
    return (None if output else entry[1]), None
