"""Convert a WebMEV operation into Ferry's spec, refusing what WebMEV itself refuses.

A WebMEV operation is a folder (usually a git repository) holding:

- ``operation_spec.json``: exactly ``name``, ``description``, ``inputs``, ``outputs``, ``mode``
  and ``workspace_operation`` (``id``, ``git_hash``, ``repository_url`` and
  ``repository_name`` are tolerated: WebMEV overwrites them when it ingests). ``inputs`` maps
  keys to exactly ``{description, name, required, converter, spec}``, ``outputs`` to exactly
  ``{required, converter, spec}``; ``spec`` is an attribute (``{"attribute_type":
  "BoundedInteger", "min": 0, "max": 10, "default": 3}``; see :mod:`operations.webmev_vocabulary`);
- ``entrypoint.txt`` (mode ``local_docker``): the command, a Jinja template over the input keys,
  rendered as :mod:`operations.templates` describes (``command_style: "webmev"``);
- ``main.wdl`` (mode ``cromwell``): the workflow; the spec's keys are the workflow's fully
  qualified input and output names (``Workflow.input``);
- ``converters.json`` (older operations): input key → converter, when an input carries none;
- ``docker/Dockerfile`` (the build context is ``docker/``), or a ``Dockerfile`` at the top.

WebMEV has no versions: the converted operation has version ``"0"`` and is told apart by its
revision (the git commit). Its name is the slug of WebMEV's display name (``"Principal component
analysis (PCA)"`` → ``principal-component-analysis-pca``), or of the folder's name.

Keys the converted spec carries for WebMEV (besides Ferry's own): ``command_style: "webmev"``;
per input ``render`` (from its converter), ``wdl_input`` (cromwell: the FQN); float inputs
``infinity`` (the marker strings WebMEV accepts as infinite values); per output ``wdl_output``
(cromwell); and under ``webmev`` what Ferry has no place for (display name, attribute type,
resource types, converter, ``many``). Every problem is a :class:`~operations.spec.SpecError`
entry by its path in ``operation_spec.json`` (``$.inputs.samples.spec.min``) or
``entrypoint.txt``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.utils.text import slugify

from .spec import (
    IDENTIFIER_RE,
    NAME_MAX_LENGTH,
    SpecError,
    check_spec,
    child_path,
    load_document,
)
from .webmev_vocabulary import (
    RESOURCE_TYPE_FILE_TYPES,
    Problems,
    attribute_family,
    attribute_kind,
    converter_problem,
    ferry_type,
    normalized_default,
    output_type,
    webmev_bool,
)

__all__ = ["RESOURCE_TYPE_FILE_TYPES", "convert_webmev", "operation_slug"]

SPEC_FILENAME = "operation_spec.json"
ENTRYPOINT_FILENAME = "entrypoint.txt"
CONVERTERS_FILENAME = "converters.json"
WORKFLOW_FILENAME = "main.wdl"
WEBMEV_VERSION = "0"

_MODES = {"local_docker": "docker", "cromwell": "wdl"}
_NEXTFLOW_MODES = ("nf_local", "nf_batch")
_TOP_KEYS = ("name", "description", "inputs", "outputs", "mode", "workspace_operation")
_SET_BY_WEBMEV = ("id", "git_hash", "repository_url", "repository_name")
_INPUT_KEYS = ("description", "name", "required", "converter", "spec")
_OUTPUT_KEYS = ("required", "converter", "spec")


def operation_slug(text: str) -> str:
    """A Ferry operation name from WebMEV's display name (or a folder name)."""
    slug = slugify(text).replace("_", "-")
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    return slug[:NAME_MAX_LENGTH].rstrip("-")


# --- the operation as a whole ---------------------------------------------------------------------


def _refuse_other_runners(raw: Mapping[str, Any], source_name: str) -> None:
    """Nextflow and ECS operations are refused with one error and nothing else."""
    mode = raw.get("mode")
    if mode in _NEXTFLOW_MODES:
        message = f"Nextflow isn't supported (mode {mode!r}); Ferry runs local_docker and cromwell"
    elif mode == "ecs":
        message = "WebMEV's AWS ECS runner isn't supported (mode 'ecs'); use local_docker"
    else:
        return
    raise SpecError([{"path": "$.mode", "message": message}], source_name=source_name)


def _check_top(raw: Mapping[str, Any], problems: Problems) -> str | None:
    """Top-level keys (set equality, as WebMEV checks them); returns the WebMEV mode."""
    for key in _TOP_KEYS:
        if key not in raw:
            problems.add(child_path("$", key), "is required in a WebMEV operation spec")
    for key in raw:
        if key not in _TOP_KEYS and key not in _SET_BY_WEBMEV:
            problems.add(
                child_path("$", key),
                f"unknown key in a WebMEV operation spec (it has exactly {', '.join(_TOP_KEYS)})",
            )
    if "workspace_operation" in raw and webmev_bool(raw["workspace_operation"]) is None:
        problems.add("$.workspace_operation", "must be true or false")
    for key in ("name", "description"):
        if key in raw and not isinstance(raw[key], str):
            problems.add(child_path("$", key), "must be a string")
    mode = raw.get("mode")
    if "mode" in raw and mode not in _MODES:
        known = ", ".join(_MODES)
        problems.add("$.mode", f"unknown WebMEV run mode {mode!r}; Ferry runs {known}")
        return None
    return mode if isinstance(mode, str) else None


def _converter_map(converters: Any, problems: Problems) -> Mapping[str, Any]:
    if converters is None:
        return {}
    loaded = load_document(converters, source_name=CONVERTERS_FILENAME)
    if isinstance(loaded, Mapping):
        return loaded
    problems.add(CONVERTERS_FILENAME, "must be a JSON object: input key → converter class")
    return {}


# --- inputs and outputs ---------------------------------------------------------------------------


def _check_entry_keys(
    entry: Mapping[str, Any], allowed: tuple[str, ...], path: str, problems: Problems, what: str
) -> bool:
    """An entry has exactly ``allowed``; extra keys holding an entry hint at a missing brace."""
    exactly = f"a WebMEV {what} has exactly {', '.join(allowed)}"
    ok = True
    for key in allowed:
        if key not in entry:
            problems.add(child_path(path, key), f"is required: {exactly}")
            ok = False
    for key, value in entry.items():
        if key in allowed:
            continue
        hint = ""
        if isinstance(value, Mapping) and "spec" in value:
            hint = f" ({key!r} looks like an {what} of its own: is a closing brace missing?)"
        problems.add(child_path(path, key), f"unknown key: {exactly}{hint}")
        ok = False
    return ok


def _required(entry: Mapping[str, Any], path: str, problems: Problems) -> bool:
    value = entry.get("required", True)
    if isinstance(value, str) and value in ("0", "1"):
        value = int(value)
    flag = webmev_bool(value) if not isinstance(value, str) else None
    if flag is None:
        problems.add(child_path(path, "required"), "must be a boolean (true/false or 1/0)")
        return True
    return flag


def _converter(
    converter: Any, where: str, kind: str, ferry: Mapping[str, Any], ctx: _Context, *, output: bool
) -> str | None:
    family = attribute_family(kind, ferry)
    render, problem = converter_problem(converter, family=family, mode=ctx.mode, output=output)
    if problem:
        ctx.problems.add(where, problem)
    return render


def _meta(kind: str, spec: Mapping[str, Any], converter: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"attribute_type": kind, "converter": converter}
    for key in ("resource_type", "resource_types", "many"):
        if key in spec:
            meta[key] = spec[key]
    return meta


class _Context:
    """What converting the inputs and outputs needs: the mode, problems, and names given."""

    def __init__(
        self, mode: str | None, converter_map: Mapping[str, Any], problems: Problems
    ) -> None:
        self.mode = mode
        self.converter_map = converter_map
        self.problems = problems
        self.names: dict[str, str] = {}  # Ferry name → WebMEV key (inputs and outputs apart)
        self.unconverted: set[str] = set()

    def ferry_name(self, key: str, path: str, taken: dict[str, str]) -> str | None:
        """The Ferry name of a WebMEV key: the key (local_docker) or what follows its last dot
        (cromwell: the key is ``Workflow.input``)."""
        if self.mode == "cromwell":
            if "." not in key:
                self.problems.add(
                    path, f"{key!r} is not a workflow input's full name (Workflow.input)"
                )
                return None
            name = key.rsplit(".", 1)[1]
        else:
            name = key
        if not IDENTIFIER_RE.match(name):
            self.problems.add(path, f"{name!r} can't be a Ferry name (letters, digits and _)")
            return None
        if name in taken:
            self.problems.add(
                path, f"{key!r} and {taken[name]!r} would both be called {name!r} in Ferry"
            )
            return None
        taken[name] = key
        return name


def _attribute(entry: Mapping[str, Any], path: str, ctx: _Context) -> tuple[str, dict[str, Any]]:
    spec = entry.get("spec")
    spath = child_path(path, "spec")
    kind = attribute_kind(spec, spath, ctx.problems)
    if kind is None or not isinstance(spec, Mapping):
        return "", {}
    return kind, ferry_type(kind, spec, spath, ctx.problems)


def _input(
    key: str, entry: Any, ctx: _Context, taken: dict[str, str]
) -> tuple[str, dict[str, Any]] | None:
    path = child_path("$.inputs", key)
    if not isinstance(entry, Mapping):
        ctx.problems.add(
            path, "must be an object with description, name, required, converter, spec"
        )
        return None
    converter = entry.get("converter", ctx.converter_map.get(key))
    keys = dict(entry) if "converter" in entry or converter is None else {**entry, "converter": 0}
    _check_entry_keys(keys, _INPUT_KEYS, path, ctx.problems, "input")
    required = _required(entry, path, ctx.problems)
    name = ctx.ferry_name(key, path, taken)
    kind, ferry = _attribute(entry, path, ctx)
    if not ferry or name is None:
        ctx.unconverted.add(key)
        return None
    spec = entry["spec"]
    default = spec.get("default")
    if default is not None:
        default = normalized_default(
            kind, default, child_path(child_path(path, "spec"), "default"), ctx.problems
        )
    where = (
        child_path(path, "converter")
        if "converter" in entry
        else child_path(CONVERTERS_FILENAME, key)
    )
    render = _converter(converter, where, kind, ferry, ctx, output=False) if converter else None
    out: dict[str, Any] = {**ferry, "required": required and default is None}
    if isinstance(entry.get("description"), str):
        out["description"] = entry["description"]
    if default is not None:
        out["default"] = default  # WebMEV's required-with-default is optional in Ferry
    if render:
        out["render"] = render
    if ctx.mode == "cromwell":
        out["wdl_input"] = key
    out["webmev"] = {**_meta(kind, spec, converter), "name": entry.get("name")}
    return name, out


def _output(
    key: str, entry: Any, ctx: _Context, taken: dict[str, str]
) -> tuple[str, dict[str, Any]] | None:
    path = child_path("$.outputs", key)
    if not isinstance(entry, Mapping):
        ctx.problems.add(path, "must be an object with required, converter, spec")
        return None
    _check_entry_keys(entry, _OUTPUT_KEYS, path, ctx.problems, "output")
    required = _required(entry, path, ctx.problems)
    name = ctx.ferry_name(key, path, taken)
    kind, ferry = _attribute(entry, path, ctx)
    if not ferry or name is None:
        return None
    out_type = output_type(ferry, kind)
    if out_type is None:
        ctx.problems.add(
            child_path(child_path(path, "spec"), "attribute_type"),
            f"Ferry can't take a {kind} as an output",
        )
        return None
    converter = entry.get("converter")
    if "converter" in entry:
        _converter(converter, child_path(path, "converter"), kind, ferry, ctx, output=True)
    out: dict[str, Any] = {**out_type, "required": required}
    if ctx.mode == "cromwell":
        out["wdl_output"] = key
    out["webmev"] = _meta(kind, entry["spec"], converter)
    return name, out


def _convert_entries(raw: Any, where: str, ctx: _Context) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        ctx.problems.add(where, "must be an object (key → entry)")
        return {}
    convert = _input if where == "$.inputs" else _output
    taken: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, entry in raw.items():
        converted = convert(str(key), entry, ctx, taken)
        if converted is not None:
            out[converted[0]] = converted[1]
    if where == "$.inputs":
        ctx.names = dict(taken)
    return out


# --- Ferry's own check, its paths translated back -------------------------------------------------


def _translate_path(path: str, ctx: _Context) -> str:
    """A path in the converted Ferry spec → where that came from in WebMEV's files."""
    if path == "$.command":
        return ENTRYPOINT_FILENAME
    match = re.match(r"^\$\.inputs(?:\.([A-Za-z_][A-Za-z0-9_]*))\.(\w+)(.*)$", path)
    if not match:
        return path
    name, key, rest = match.groups()
    base = child_path("$.inputs", ctx.names.get(name, name))
    renamed = {"default": "default", "min": "min", "max": "max", "choices": "options"}.get(key)
    if renamed:
        return f"{base}.spec.{renamed}{rest}"
    return f"{base}.{key}{rest}" if key in ("required", "description") else path


def _ferry_check(ferry: dict[str, Any], ctx: _Context, source_name: str) -> dict[str, Any]:
    errors = list(ctx.problems.items)
    try:
        converted = check_spec(ferry, source_name=source_name)
    except SpecError as exc:
        reported = {e["path"] for e in errors}
        for error in exc.errors:
            path = _translate_path(error["path"], ctx)
            message = error["message"].replace("command:", f"{ENTRYPOINT_FILENAME}:", 1)
            if path in reported or any(
                f"{{{{ {key} }}}} names no input" in message for key in ctx.unconverted
            ):
                continue  # already said, or the template names an input reported above
            errors.append({"path": path, "message": message})
        converted = {}
    if errors:
        raise SpecError(errors, source_name=source_name)
    return converted


def convert_webmev(
    operation_spec: bytes | str | Mapping[str, Any],
    *,
    entrypoint: str | None,
    converters: bytes | str | Mapping[str, Any] | None = None,
    folder_name: str = "",
    source_name: str = SPEC_FILENAME,
) -> dict[str, Any]:
    """Convert WebMEV's ``operation_spec.json`` (+ ``entrypoint.txt``, ``converters.json``) and
    return Ferry's normalized spec, or raise :class:`SpecError` listing every problem."""
    raw = load_document(operation_spec, source_name=source_name)
    if not isinstance(raw, Mapping):
        raise SpecError(
            [{"path": "$", "message": "the spec must be a JSON object"}], source_name=source_name
        )
    _refuse_other_runners(raw, source_name)
    problems = Problems()
    mode = _check_top(raw, problems)
    ctx = _Context(mode, _converter_map(converters, problems), problems)
    inputs = _convert_entries(raw.get("inputs"), "$.inputs", ctx)
    outputs = _convert_entries(raw.get("outputs"), "$.outputs", ctx)
    display_name = raw.get("name")
    name = operation_slug(display_name) if isinstance(display_name, str) else ""
    name = name or operation_slug(folder_name)
    if not name:
        problems.add("$.name", "is required: a name to derive the operation's name from")
    if mode is None:
        raise SpecError(problems.items, source_name=source_name)
    ferry: dict[str, Any] = {
        "name": name,
        "version": WEBMEV_VERSION,
        "description": raw.get("description") if isinstance(raw.get("description"), str) else "",
        "mode": _MODES[mode],
        "inputs": inputs,
        "outputs": outputs,
        "webmev": {
            "name": display_name,
            "mode": mode,
            "workspace_operation": webmev_bool(raw.get("workspace_operation")),
        },
    }
    if mode == "cromwell":
        ferry["workflow"] = WORKFLOW_FILENAME
    elif entrypoint is None or not entrypoint.strip():
        problems.add(ENTRYPOINT_FILENAME, "is missing or empty: a local_docker operation needs it")
    else:
        ferry.update(command=entrypoint.strip(), command_style="webmev")
    return _ferry_check(ferry, ctx, source_name)


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
    from .spec import render_argv

    argv = render_argv(spec, values)
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
