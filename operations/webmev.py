"""Convert a WebMEV operation into Ferry's spec.

A WebMEV local-Docker operation is a folder (usually a git repository) holding:

- ``operation_spec.json``: ``name``, ``description``, ``mode`` (``local_docker``, ``cromwell``…),
  ``inputs`` and ``outputs`` mapping keys to ``{description, name, required, converter, spec}``
  where ``spec`` is an attribute: ``{"attribute_type": "BoundedInteger", "min": 0, "max": 10,
  "default": 3}``, ``{"attribute_type": "DataResource", "resource_types": ["I_MTX"], "many":
  false}`` and so on;
- ``entrypoint.txt``: the command, a Jinja2 template over the input keys;
- ``converters.json`` (older operations): input key → converter class, when the spec's inputs
  carry no ``converter`` of their own;
- ``docker/Dockerfile`` (the build context is ``docker/``), or a ``Dockerfile`` at the top.

WebMEV has no versions: the converted operation has version ``"0"`` and is told apart by its
revision (the git commit). Its name is the slug of WebMEV's display name (``"Principal component
analysis (PCA)"`` → ``principal-component-analysis-pca``), or of the folder's name.

What WebMEV says that Ferry has no place for (display labels, the original attribute type,
resource types and converter) is kept under each input's and output's ``webmev`` key. What
can't be converted is reported as :class:`~operations.spec.SpecError` entries, by the path in
``operation_spec.json`` (``$.inputs.samples.spec.attribute_type``) — or ``entrypoint.txt``.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from typing import Any

from django.utils.text import slugify

from .spec import (
    FILE_TYPES,
    IDENTIFIER_RE,
    NAME_MAX_LENGTH,
    SpecError,
    check_spec,
    child_path,
    load_document,
)

SPEC_FILENAME = "operation_spec.json"
ENTRYPOINT_FILENAME = "entrypoint.txt"
CONVERTERS_FILENAME = "converters.json"
WEBMEV_VERSION = "0"

# WebMEV resource types → the Ferry file types a file of that type can be.
RESOURCE_TYPE_FILE_TYPES: dict[str, tuple[str, ...]] = {
    # Tables (matrices, annotations, feature tables, BED, network descriptors).
    "MTX": ("table",),
    "I_MTX": ("table",),
    "EXP_MTX": ("table",),
    "RNASEQ_COUNT_MTX": ("table",),
    "ANN": ("table",),
    "FT": ("table",),
    "NS": ("table",),
    "BED": ("table",),
    "BED3": ("table",),
    "BED6": ("table",),
    "TSV": ("table",),
    "CSV": ("table",),
    "JSON": ("json",),
    "TXT": ("text",),
    # Sequences and alignments: plain text, or compressed/binary (fastq.gz, BAM).
    "FQ": ("text", "binary"),
    "FA": ("text", "binary"),
    "ALN": ("text", "binary"),
    "BIGWIG": ("binary",),
    "BW": ("binary",),
    # WebMEV's wildcard: a general file.
    "*": FILE_TYPES,
}

_MODES = {"local_docker": "docker", "cromwell": "wdl"}

_INTEGER_TYPES = {
    "Integer": (None, None),
    "PositiveInteger": (1, None),
    "NonnegativeInteger": (0, None),
}
# "Positive" is exclusive of 0; Ferry's bounds are inclusive, and the smallest positive float
# is an exact inclusive bound for "> 0".
_FLOAT_TYPES = {
    "Float": (None, None),
    "PositiveFloat": (math.ulp(0.0), None),
    "NonnegativeFloat": (0.0, None),
}
_STRING_TYPES = {"String", "UnrestrictedString"}
_LIST_TYPES = {
    "StringList": "string",
    "UnrestrictedStringList": "string",
    "BoundedIntegerList": "integer",
    "BoundedFloatList": "float",
}
_FILE_ATTRIBUTE_TYPES = {"DataResource", "VariableDataResource"}
_UNCONVERTIBLE = {
    "ObservationSet": "an observation (sample) set",
    "FeatureSet": "a feature (gene) set",
    "Observation": "an observation",
    "Feature": "a feature",
    "IntegerOption": "an option among integers (Ferry's options are strings)",
    "FloatOption": "an option among numbers (Ferry's options are strings)",
    "OperationDataResource": "a file provided by the operation itself",
}

# Converters (by class name) whose rendering matches Ferry's: the value, or a container path.
_MATCHING_CONVERTERS = {
    "StringConverter",
    "UnrestrictedStringConverter",
    "IntegerConverter",
    "FloatConverter",
    "OptionStringConverter",
    "LocalDockerSingleDataResourceConverter",
    "LocalDockerSingleVariableDataResourceConverter",
}


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})


def operation_slug(text: str) -> str:
    """A Ferry operation name from WebMEV's display name (or a folder name)."""
    slug = slugify(text).replace("_", "-")
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    return slug[:NAME_MAX_LENGTH].rstrip("-")


def _converter_problem(converter: str) -> str | None:
    """Why a WebMEV converter's rendering can't be reproduced by Ferry (None: it can)."""
    name = converter.rsplit(".", 1)[-1]
    if name in _MATCHING_CONVERTERS or "SpaceDelim" in name:
        return None
    if "Cromwell" in name:
        return f"{name} is for Cromwell (WDL) operations, not local Docker ones"
    if "Csv" in name or "CommaDelim" in name:
        return f"{name} joins values with commas; Ferry passes list items as separate, quoted words"
    if name == "BooleanAsIntegerConverter":
        return f"{name} renders 1/0; Ferry renders booleans as true/false"
    if name == "BooleanConverter":
        return f"{name} renders True/False; Ferry renders booleans as true/false"
    if "List" in name:
        return f"{name} passes a Python list; Ferry passes list items as separate, quoted words"
    return f"unknown WebMEV converter {converter!r}: Ferry can't tell how it formats the value"


def _file_types(resource_types: Any, path: str, problems: _Problems) -> list[str] | None:
    if isinstance(resource_types, str):
        resource_types = [resource_types]
    if not isinstance(resource_types, list) or not resource_types:
        problems.add(path, "must be a non-empty list of WebMEV resource types")
        return None
    found: set[str] = set()
    for index, resource_type in enumerate(resource_types):
        mapped = (
            RESOURCE_TYPE_FILE_TYPES.get(resource_type) if isinstance(resource_type, str) else None
        )
        if mapped is None:
            known = ", ".join(sorted(RESOURCE_TYPE_FILE_TYPES))
            problems.add(
                child_path(path, index),
                f"unknown WebMEV resource type {resource_type!r} (known: {known})",
            )
            return None
        found.update(mapped)
    return [t for t in FILE_TYPES if t in found]


def _resource_types(spec: Mapping[str, Any]) -> str:
    """WebMEV inputs say ``resource_types`` (a list); older specs and outputs ``resource_type``."""
    return "resource_types" if "resource_types" in spec else "resource_type"


def _attribute(
    spec: Any, path: str, problems: _Problems, *, output: bool
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Map a WebMEV attribute spec to a Ferry type. Returns (ferry type, webmev metadata)."""
    if not isinstance(spec, Mapping):
        problems.add(path, 'must be an object like {"attribute_type": "Integer"}')
        return None, {}
    kind = spec.get("attribute_type")
    tpath = child_path(path, "attribute_type")
    meta: dict[str, Any] = {"attribute_type": kind}
    if (
        kind in _INTEGER_TYPES
        or kind == "BoundedInteger"
        or kind in _FLOAT_TYPES
        or kind == "BoundedFloat"
    ):
        is_int = kind in _INTEGER_TYPES or kind == "BoundedInteger"
        ferry: dict[str, Any] = {"type": "integer" if is_int else "float"}
        if kind in ("BoundedInteger", "BoundedFloat"):
            for bound in ("min", "max"):
                if spec.get(bound) is None:
                    problems.add(child_path(path, bound), f"is required for a {kind}")
                    return None, meta
            low, high = spec["min"], spec["max"]
        else:
            low, high = (_INTEGER_TYPES | _FLOAT_TYPES)[kind]
        if not output:
            ferry.update(min=low, max=high)
        return ferry, meta
    if kind in _STRING_TYPES:
        return {"type": "string"}, meta
    if kind == "Boolean":
        return {"type": "boolean"}, meta
    if kind == "OptionString":
        options = spec.get("options")
        many = spec.get("many", False) is True
        if output:
            return (
                {"type": "list", "items": {"type": "string"}} if many else {"type": "string"}
            ), meta
        option = {"type": "option", "choices": options}
        return ({"type": "list", "items": option} if many else option), meta
    if kind in _LIST_TYPES:
        item: dict[str, Any] = {"type": _LIST_TYPES[kind]}
        if kind in ("BoundedIntegerList", "BoundedFloatList") and not output:
            item.update(min=spec.get("min"), max=spec.get("max"))
        return {"type": "list", "items": item}, meta
    if kind in _FILE_ATTRIBUTE_TYPES:
        key = _resource_types(spec)
        meta[key] = spec.get(key)
        file_types = _file_types(spec.get(key), child_path(path, key), problems)
        if file_types is None:
            return None, meta
        many = spec.get("many", False) is True
        if output:
            # One declared type per output file: the only one, else a generic file.
            file_type = file_types[0] if len(file_types) == 1 else "binary"
            single = {"type": "file", "file_type": file_type}
            return ({"type": "list", "items": single} if many else single), meta
        return {"type": "file", "file_types": file_types, "many": many}, meta
    if kind in _UNCONVERTIBLE:
        problems.add(
            tpath,
            f"{kind} ({_UNCONVERTIBLE[kind]}) has no Ferry equivalent yet; "
            "use a string or a list of strings instead",
        )
    elif kind is None:
        problems.add(tpath, "is required")
    else:
        problems.add(tpath, f"unknown WebMEV attribute type {kind!r}")
    return None, meta


def _unquote_placeholders(command: str) -> str:
    """``"{{x}}"`` → ``{{x}}``: Ferry quotes every value itself."""
    return re.sub(r"([\"'])(\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})\1", r"\2", command)


def _translate_path(path: str) -> str:
    """A path in the converted Ferry spec → where that came from in WebMEV's files."""
    if path == "$.command":
        return ENTRYPOINT_FILENAME
    match = re.match(r"^(\$\.inputs(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\]))\.(\w+)(.*)$", path)
    if match:
        base, key, rest = match.groups()
        renamed = {
            "default": "default",
            "min": "min",
            "max": "max",
            "choices": "options",
            "file_types": "resource_types",
        }.get(key)
        if renamed:
            return f"{base}.spec.{renamed}{rest}"
        if key in ("required", "description"):
            return f"{base}.{key}{rest}"
    return path


def convert_webmev(
    operation_spec: bytes | str | Mapping[str, Any],
    *,
    entrypoint: str | None,
    converters: bytes | str | Mapping[str, Any] | None = None,
    folder_name: str = "",
    source_name: str = SPEC_FILENAME,
) -> dict[str, Any]:
    """Convert WebMEV's ``operation_spec.json`` (+ ``entrypoint.txt``, ``converters.json``) and
    return Ferry's normalized spec, or raise :class:`SpecError` listing what can't be converted."""
    raw = load_document(operation_spec, source_name=source_name)
    problems = _Problems()
    if not isinstance(raw, Mapping):
        raise SpecError(
            [{"path": "$", "message": "the spec must be a JSON object"}], source_name=source_name
        )
    if raw.get("mode") == "cromwell":
        return _cromwell_mode_spec(
            raw, converters=converters, folder_name=folder_name, source_name=source_name
        )
    converter_map: Mapping[str, Any] = {}
    if converters is not None:
        loaded = load_document(converters, source_name=CONVERTERS_FILENAME)
        if isinstance(loaded, Mapping):
            converter_map = loaded
        else:
            problems.add(CONVERTERS_FILENAME, "must be a JSON object: input key → converter class")

    display_name = raw.get("name")
    name = operation_slug(display_name) if isinstance(display_name, str) else ""
    if not name:
        name = operation_slug(folder_name)
    if not name:
        problems.add("$.name", "is required: a name to derive the operation's name from")

    mode = raw.get("mode")
    ferry_mode = _MODES.get(mode) if isinstance(mode, str) else None
    if ferry_mode is None:
        problems.add("$.mode", f"unsupported WebMEV mode {mode!r}; Ferry converts {sorted(_MODES)}")

    inputs: dict[str, Any] = {}
    unconverted: set[str] = set()  # inputs already reported as not convertible
    raw_inputs = raw.get("inputs") or {}
    if not isinstance(raw_inputs, Mapping):
        problems.add("$.inputs", "must be an object")
        raw_inputs = {}
    for key, entry in raw_inputs.items():
        path = child_path("$.inputs", key)
        if not isinstance(entry, Mapping):
            problems.add(path, "must be an object with a spec")
            continue
        if ferry_mode == "docker" and not IDENTIFIER_RE.match(str(key)):
            problems.add(path, f"{key!r} can't be a Ferry input name (letters, digits and _)")
        spec = entry.get("spec")
        ferry_type, meta = _attribute(spec, child_path(path, "spec"), problems, output=False)
        converter = entry.get("converter") or converter_map.get(key)
        if converter is not None:
            meta["converter"] = converter
        if ferry_type is None:
            unconverted.add(str(key))
            continue
        if ferry_mode == "docker" and converter is not None:
            problem = (
                _converter_problem(converter)
                if isinstance(converter, str)
                else "must be a dotted class name"
            )
            if problem:
                where = (
                    child_path(path, "converter")
                    if "converter" in entry
                    else child_path(CONVERTERS_FILENAME, key)
                )
                problems.add(where, problem)
                unconverted.add(str(key))
                continue
        if isinstance(entry.get("name"), str):
            meta["name"] = entry["name"]
        default = spec.get("default") if isinstance(spec, Mapping) else None
        required = entry.get("required", True)
        if default is not None:
            # WebMEV marks inputs required even when they have a default; Ferry makes them
            # optional (the default is used when no value is given).
            ferry_type["default"] = default
            required = False
        ferry_type.update(
            description=entry.get("description") or "", required=required, webmev=meta
        )
        inputs[str(key)] = ferry_type

    outputs: dict[str, Any] = {}
    raw_outputs = raw.get("outputs") or {}
    if not isinstance(raw_outputs, Mapping):
        problems.add("$.outputs", "must be an object")
        raw_outputs = {}
    for key, entry in raw_outputs.items():
        path = child_path("$.outputs", key)
        if not isinstance(entry, Mapping):
            problems.add(path, "must be an object with a spec")
            continue
        ferry_type, meta = _attribute(
            entry.get("spec"), child_path(path, "spec"), problems, output=True
        )
        if ferry_type is None:
            continue
        if entry.get("converter") is not None:
            meta["converter"] = entry["converter"]
        ferry_type.update(
            description=entry.get("description") or "",
            required=entry.get("required", True),
            webmev=meta,
        )
        outputs[str(key)] = ferry_type

    ferry: dict[str, Any] = {
        "name": name,
        "version": WEBMEV_VERSION,
        "description": raw.get("description") or "",
        "mode": ferry_mode or "docker",
        "inputs": inputs,
        "outputs": outputs,
        "webmev": {
            "name": display_name,
            "mode": mode,
            **(
                {"workspace_operation": raw["workspace_operation"]}
                if "workspace_operation" in raw
                else {}
            ),
        },
    }
    if ferry_mode == "docker":
        if entrypoint is None or not entrypoint.strip():
            problems.add(
                ENTRYPOINT_FILENAME,
                "is missing or empty: a local_docker operation needs its command",
            )
        else:
            ferry["command"] = _unquote_placeholders(entrypoint.strip())

    errors = list(problems.items)
    try:
        converted = check_spec(ferry, source_name=source_name)
    except SpecError as exc:
        reported = {e["path"] for e in errors}
        for error in exc.errors:
            path = _translate_path(error["path"])
            if error["path"] in reported or path in reported:
                continue  # the conversion already said what is wrong there
            if any(
                error["message"].startswith(f"unknown placeholder {{{{ {key} }}}}")
                for key in unconverted
            ):
                continue  # the placeholder names an input reported above
            errors.append({"path": path, "message": error["message"]})
        converted = {}
    if errors:
        raise SpecError(errors, source_name=source_name)
    return converted


# --- Cromwell mode: a WDL operation keeping WebMEV's inputs mapping -------------------------------


def _cromwell_mode_spec(
    raw: Mapping[str, Any],
    *,
    converters: bytes | str | Mapping[str, Any] | None,
    folder_name: str,
    source_name: str,
) -> dict[str, Any]:
    """A WebMEV ``mode: cromwell`` spec as a Ferry WDL spec (checked with :func:`check_spec`).

    WebMEV's input and output keys are the workflow's fully qualified names
    (``HierarchicalCluster.linkage``); each becomes an input/output named by the part after the
    last dot, with ``wdl_input`` / ``wdl_output`` holding the FQN. Choices, defaults and
    descriptions are kept, and per input/output a ``webmev`` entry with the attribute type,
    resource type(s) and converter. Only ``main.wdl`` runs (``workflow``). Whether the names
    match the workflow is checked when the workflow is loaded (ingestion)."""
    problems = _Problems()
    converter_map: Mapping[str, Any] = {}
    if converters is not None:
        loaded = load_document(converters, source_name=CONVERTERS_FILENAME)
        if isinstance(loaded, Mapping):
            converter_map = loaded
        else:
            problems.add(CONVERTERS_FILENAME, "must be a JSON object: input key → converter class")
    display_name = raw.get("name")
    name = operation_slug(display_name) if isinstance(display_name, str) else ""
    name = name or operation_slug(folder_name)
    if not name:
        problems.add("$.name", "is required: a name to derive the operation's name from")

    def section(key: str, *, output: bool) -> dict[str, Any]:
        found: dict[str, Any] = {}
        entries = raw.get(key) or {}
        if not isinstance(entries, Mapping):
            problems.add(f"$.{key}", "must be an object")
            return found
        taken: dict[str, str] = {}
        for fqn, entry in entries.items():
            path = child_path(f"$.{key}", fqn)
            short = str(fqn).rsplit(".", 1)[-1]
            if not isinstance(entry, Mapping):
                problems.add(path, "must be an object with a spec")
                continue
            if "." not in str(fqn) or not IDENTIFIER_RE.match(short):
                problems.add(path, f"{fqn!r} is not a WDL name like Workflow.{short or 'x'}")
                continue
            if short in taken:
                problems.add(path, f"{fqn!r} and {taken[short]!r} both end in {short!r}")
                continue
            taken[short] = str(fqn)
            spec = entry.get("spec")
            ferry_type, meta = _attribute(spec, child_path(path, "spec"), problems, output=output)
            converter = entry.get("converter") or converter_map.get(fqn)
            if converter is not None:
                meta["converter"] = converter
            if ferry_type is None:
                continue
            if isinstance(entry.get("name"), str):
                meta["name"] = entry["name"]
            required = entry.get("required", True)
            default = spec.get("default") if isinstance(spec, Mapping) else None
            if default is not None and not output:
                ferry_type["default"] = default
                required = False
            ferry_type.update(
                description=entry.get("description") or "", required=required, webmev=meta
            )
            ferry_type["wdl_output" if output else "wdl_input"] = str(fqn)
            found[short] = ferry_type
        return found

    ferry: dict[str, Any] = {
        "name": name,
        "version": WEBMEV_VERSION,
        "description": raw.get("description") or "",
        "mode": "wdl",
        "workflow": "main.wdl",
        "inputs": section("inputs", output=False),
        "outputs": section("outputs", output=True),
        "webmev": {
            "name": display_name,
            "mode": "cromwell",
            **(
                {"workspace_operation": raw["workspace_operation"]}
                if "workspace_operation" in raw
                else {}
            ),
        },
    }
    errors = list(problems.items)
    try:
        converted = check_spec(ferry, source_name=source_name)
    except SpecError as exc:
        reported = {e["path"] for e in errors}
        errors += [e for e in exc.errors if e["path"] not in reported]
        converted = {}
    if errors:
        raise SpecError(errors, source_name=source_name)
    return converted


# --- running a converted operation (WebMEV's run contract for local Docker) ----------------------

_FILE_OUTPUT_TYPES = ("DataResource", "VariableDataResource")


def runs_webmev_style(spec: Mapping[str, Any]) -> bool:
    """Whether a docker operation runs under WebMEV's run contract: its inputs copied into a
    writable execution dir mounted at the same path in the container, its argv run without a
    shell after the image's ENTRYPOINT, and outputs.json read from that dir (see
    docs/webmev.md). The one switch for it: converted specs say ``"command_style": "webmev"``;
    specs converted before that key existed are told by their ``webmev`` key."""
    if spec.get("mode") != "docker":
        return False
    style = spec.get("command_style")
    if style is not None:
        return bool(style == "webmev")
    return isinstance(spec.get("webmev"), Mapping)


def webmev_argv(spec: Mapping[str, Any], values: Mapping[str, object]) -> list[str]:
    """The words a WebMEV operation runs (WebMEV splits its rendered entrypoint with shlex and
    runs the words without a shell). Ferry's renderer quotes each value, so splitting gives
    every value back as it was."""
    from .spec import render_command

    argv = shlex.split(render_command(spec, values))
    if not argv:
        raise ValueError("the entrypoint renders as no words at all")
    return argv


def webmev_file_outputs(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the executor needs to read WebMEV's outputs.json: per file output its WebMEV
    attribute type (a DataResource is a path; a VariableDataResource ``{"path", "resource_type"}``),
    whether it is a list (``many``) and its declared resource types."""
    found: dict[str, dict[str, Any]] = {}
    for name, output in (spec.get("outputs") or {}).items():
        meta = output.get("webmev") or {}
        kind = meta.get("attribute_type")
        if kind not in _FILE_OUTPUT_TYPES:
            continue
        declared = meta.get("resource_types", meta.get("resource_type"))
        found[name] = {
            "attribute_type": kind,
            "many": output.get("type") == "list",
            "resource_types": [declared] if isinstance(declared, str) else list(declared or []),
        }
    return found


def output_resource_type(
    output: Mapping[str, Any], raw: Any, position: tuple[Any, ...]
) -> str | None:
    """The WebMEV resource type of the file at ``position`` of an output: the one outputs.json
    gave (a VariableDataResource), else the one the spec declares (a DataResource)."""
    item = raw[position[0]] if position and isinstance(raw, list) else raw
    if isinstance(item, Mapping) and isinstance(item.get("resource_type"), str):
        return str(item["resource_type"])
    meta = output.get("webmev") or {}
    declared = meta.get("resource_types", meta.get("resource_type"))
    if isinstance(declared, list) and len(declared) == 1:
        declared = declared[0]
    return declared if isinstance(declared, str) else None


def file_type_for(resource_type: str | None, declared: str | None) -> str | None:
    """The Ferry file type of a file of a WebMEV resource type: the first the type maps to; for
    the wildcard ``*`` (or an unknown type) the output's declared file type."""
    if resource_type and resource_type != "*":
        mapped = RESOURCE_TYPE_FILE_TYPES.get(resource_type)
        if mapped:
            return mapped[0]
    return declared
