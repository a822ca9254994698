"""Checking a job's inputs against its operation's spec, and turning them into a container run.

Errors are collected for every input and reported by path (``inputs.min_rows``,
``inputs.names[2]``) in one 400 answer.
"""

from __future__ import annotations

import math
import re
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from api.element_sets.selectors import element_set_in_workspace
from api.exceptions import ApplicationError
from api.models import File, FileStatus, Workspace
from api.selectors import files_visible_to
from api.storage import is_local, local_path
from executors.specs import Mount
from wdl.outputs import file_refs_of, is_file_output

from .spec import ELEMENT_INPUT_TYPES, checked_element_value, value_errors

SCALARS = ("integer", "float", "string", "boolean", "option")


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)


def validate_inputs(
    spec: dict[str, Any], raw: Any, *, user: Any, workspace: Workspace | None = None
) -> dict[str, Any]:
    """Return the validated inputs (defaults filled in; files as id strings; sets named by id
    resolved from ``workspace``) or raise a 400."""
    errors = _Errors()
    if not isinstance(raw, dict):
        raise ApplicationError(
            "inputs must be an object mapping input names to values.",
            details={"inputs": ["Expected an object."]},
        )
    declared: dict[str, Any] = spec.get("inputs", {})
    for name in raw:
        if name not in declared:
            errors.add(
                f"inputs.{name}",
                f"Unknown input; this operation takes: {', '.join(declared) or 'none'}.",
            )
    values: dict[str, Any] = {}
    for name, input_spec in declared.items():
        path = f"inputs.{name}"
        if name not in raw or raw[name] is None:
            _fill_default(values, name, input_spec, errors)
            continue
        if input_spec.get("type") in ELEMENT_INPUT_TYPES:
            checked = _check_elements(input_spec, raw[name], path, errors, user, workspace)
        else:
            checked = _check(input_spec, raw[name], path, errors, user)
        if checked is not None:
            values[name] = checked
    if errors.by_path:
        first_path, first = next(iter(errors.by_path.items()))
        raise ApplicationError(
            f"{first_path}: {first[0]}", details=errors.by_path, code="invalid_inputs"
        )
    return values


def _fill_default(
    values: dict[str, Any], name: str, input_spec: dict[str, Any], errors: _Errors
) -> None:
    """An input given no value takes its default, or is reported missing when required."""
    if "default" in input_spec and input_spec["default"] is not None:
        values[name] = input_spec["default"]
    elif input_spec.get("required", True):
        errors.add(f"inputs.{name}", "This input is required.")


def _check(spec: dict[str, Any], value: Any, path: str, errors: _Errors, user: Any) -> Any:
    kind = spec.get("type")
    if value is None and spec.get("optional"):
        return None  # an optional item inside a structured (WDL) input
    if kind in ("map", "pair", "struct"):
        return _check_structured(spec, value, path, errors, user)
    if kind == "list":
        if not isinstance(value, list):
            errors.add(path, "Expected a list.")
            return None
        items = [
            _check(spec["items"], item, f"{path}[{i}]", errors, user)
            for i, item in enumerate(value)
        ]
        return items
    if kind == "file":
        if spec.get("many"):
            if not isinstance(value, list) or not value:
                errors.add(path, "Expected a non-empty list of file ids.")
                return None
            return [
                _check_file(spec, item, f"{path}[{i}]", errors, user)
                for i, item in enumerate(value)
            ]
        return _check_file(spec, value, path, errors, user)
    return _check_scalar(spec, value, path, errors)


def _check_elements(
    spec: dict[str, Any],
    value: Any,
    path: str,
    errors: _Errors,
    user: Any,
    workspace: Workspace | None,
) -> dict[str, Any] | None:
    """An observation/feature (set) input: an inline value, or for a set ``{"set": "<id>"}``
    naming a set of the job's workspace the user can read. A named set is stored inline, with
    where it came from (``from_set``: its id and name) kept for provenance."""
    kind = str(spec["type"])
    if kind.endswith("_set") and isinstance(value, dict) and "set" in value:
        if set(value) != {"set"}:
            extra = ", ".join(sorted(str(k) for k in value if k != "set"))
            errors.add(path, f'Name a set with {{"set": "<id>"}} alone (unexpected: {extra}).')
            return None
        found = (
            None if workspace is None else element_set_in_workspace(user, workspace, value["set"])
        )
        if found is None:
            named = value["set"]
            shown = f" {named}" if isinstance(named, str) and len(named) <= 64 else ""
            errors.add(path, f"No set{shown} in this job's workspace that you can see.")
            return None
        wanted = kind.removesuffix("_set")
        if found.kind != wanted:
            errors.add(
                path, f"The set {found.name} holds {found.kind}s; this input takes a {wanted} set."
            )
            return None
        return {
            "elements": list(found.elements),
            "from_set": {"id": str(found.pk), "name": found.name},
        }
    checked, problems = checked_element_value(kind, value, path=path)
    for where, message in problems:
        errors.add(where, message[:1].upper() + message[1:] + ".")
    return checked


def _check_structured(
    spec: dict[str, Any], value: Any, path: str, errors: _Errors, user: Any
) -> dict[str, Any] | None:
    """A map (an object keyed by strings), a pair (``{"left", "right"}``) or a struct (an
    object of its members), as the WDL engines' inputs JSON takes them."""
    kind = spec["type"]
    if not isinstance(value, dict):
        errors.add(path, f"Expected an object (a {kind}).")
        return None
    parts = _structured_parts(spec, value, path, errors)
    for key in value:
        if key not in parts:
            known = ", ".join(parts) or "none"
            errors.add(f"{path}.{key}", f"Unknown member of this {kind}; it has: {known}.")
    checked: dict[str, Any] = {}
    for key, part in parts.items():
        inner_path = f"{path}.{key}"
        if value.get(key) is None:
            if kind == "pair" or not part.get("optional"):
                errors.add(inner_path, "This value is required.")
            continue
        checked[key] = _check(part, value[key], inner_path, errors, user)
    return checked


def _structured_parts(
    spec: dict[str, Any], value: dict[str, Any], path: str, errors: _Errors
) -> dict[str, Any]:
    """The parts a map, pair or struct value has (key -> the part's spec); a map's keys that
    don't stand for its key type are reported."""
    kind = spec["type"]
    if kind == "map":
        for key in value:
            if not _is_map_key(spec.get("keys", "string"), str(key)):
                errors.add(f"{path}.{key}", f"This map's keys are {spec['keys']} values.")
        return {str(key): spec["values"] for key in value}
    if kind == "pair":
        return {"left": spec["left"], "right": spec["right"]}
    return dict(spec["members"])


def _is_map_key(kind: str, key: str) -> bool:
    """Whether a JSON object key stands for a WDL map key of this type (``"1"`` for ``Int``)."""
    if kind == "integer":
        return bool(re.fullmatch(r"-?[0-9]+", key))
    if kind == "float":
        try:
            return math.isfinite(float(key))
        except ValueError:
            return False
    if kind == "boolean":
        return key in ("true", "false")
    return True


def _check_scalar(spec: dict[str, Any], value: Any, path: str, errors: _Errors) -> Any:
    if spec.get("type") not in SCALARS:
        errors.add(path, f"The operation declares an unsupported type {spec.get('type')!r}.")
        return None
    problems = value_errors(spec, value)
    if spec.get("type") == "string" and isinstance(value, str) and "\x00" in value:
        problems.append("must not contain NUL characters")
    for problem in problems:
        errors.add(path, problem[:1].upper() + problem[1:] + ".")
    if problems:
        return None
    if spec.get("type") == "float" and not isinstance(value, str):  # str: WebMEV's "++inf++"
        return float(value)
    return value


def _check_file(
    spec: dict[str, Any], value: Any, path: str, errors: _Errors, user: Any
) -> str | None:
    try:
        file_id = uuid.UUID(str(value))
    except ValueError:
        errors.add(path, "Expected a file id (a UUID).")
        return None
    file = files_visible_to(user).filter(pk=file_id).first()
    if file is None:
        errors.add(path, f"No file {file_id} that you can see.")
        return None
    if file.status != FileStatus.READY:
        reason = f": {file.invalid_reason}" if file.invalid_reason else ""
        errors.add(path, f"The file {file.name} is {file.status}, not ready{reason}.")
        return None
    allowed = spec.get("file_types") or []
    if allowed and file.file_type not in allowed:
        errors.add(
            path,
            f"The file {file.name} is a {file.file_type} file; this input takes {', '.join(allowed)}.",
        )
        return None
    resource_types = declared_resource_types(spec)
    if file.resource_type and resource_types and file.resource_type not in resource_types:
        errors.add(
            path,
            f"The file {file.name} is of the resource type {file.resource_type}; this input "
            f"takes {', '.join(resource_types)}.",
        )
        return None
    return str(file.pk)


def declared_resource_types(spec: dict[str, Any]) -> list[str]:
    """The WebMEV resource types a (WebMEV operation's) file input takes; empty: any."""
    meta = spec.get("webmev") or {}
    declared = meta.get("resource_types", meta.get("resource_type"))
    codes = [declared] if isinstance(declared, str) else list(declared or [])
    return [] if "*" in codes else [str(c) for c in codes]


def container_values(
    spec: dict[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], list[Mount]]:
    """File inputs become container paths under /inputs/<input>/; returns (values, read-only mounts)."""
    ids = file_refs_of(spec["inputs"], values)
    files = {str(f.pk): f for f in File.objects.filter(pk__in=ids)}
    mounts: list[Mount] = []
    rendered: dict[str, Any] = {}

    def place(name: str, file_id: str, index: int | None) -> Any:
        file = files[file_id]
        safe = PurePosixPath(file.name).name or "file"
        target = f"/inputs/{name}/{safe}" if index is None else f"/inputs/{name}/{index}/{safe}"
        if is_local(file.storage_uri):
            mounts.append({"source": local_path(file.storage_uri), "target": target})
        else:
            # A bucket object: the worker downloads it here before the run (see runner).
            cache = Path(settings.FERRY_WORK_ROOT) / "inputs" / str(file.pk) / safe
            mounts.append({"source": str(cache), "target": target, "fetch": file.storage_uri})
        return target

    for name, value in values.items():
        if not is_file_output(spec["inputs"][name]):
            rendered[name] = value
        elif isinstance(value, list):
            rendered[name] = [place(name, v, i) for i, v in enumerate(value)]
        else:
            rendered[name] = place(name, value, None)
    return rendered, mounts


def execution_dir_values(
    spec: dict[str, Any], values: dict[str, Any], *, exec_dir: str, job_id: uuid.UUID
) -> tuple[dict[str, Any], list[Mount]]:
    """WebMEV's placement of inputs: each input file is copied into the job's execution dir
    (``exec_dir``, the same path on the host and in the container) under a name of its own,
    as WebMEV copies it there under a fresh UUID; file inputs become those absolute paths.
    Returns (values, copies): each copy's ``target`` is where the executor copies ``source``."""
    ids = [str(v) for v in file_refs_of(spec["inputs"], values)]
    files = {str(f.pk): f for f in File.objects.filter(pk__in=ids)}
    copies: list[Mount] = []
    rendered: dict[str, Any] = {}

    def place(name: str, file_id: str, index: int | None) -> Any:
        file = files[file_id]
        # The same name on every render of the job (WebMEV's is random: uuid4).
        copy_name = str(uuid.uuid5(job_id, f"input/{name}/{0 if index is None else index}"))
        target = str(PurePosixPath(exec_dir) / copy_name)
        if is_local(file.storage_uri):
            copies.append({"source": local_path(file.storage_uri), "target": target})
        else:
            safe = PurePosixPath(file.name).name or "file"
            cache = Path(settings.FERRY_WORK_ROOT) / "inputs" / str(file.pk) / safe
            copies.append({"source": str(cache), "target": target, "fetch": file.storage_uri})
        if spec["inputs"][name].get("render") == "path_with_type" and file.resource_type:
            # WebMEV's with-type converter writes "<path>:::<the file's resource type>".
            return {"path": target, "resource_type": file.resource_type}
        return target

    for name, value in values.items():
        if not is_file_output(spec["inputs"][name]):
            rendered[name] = value
        elif isinstance(value, list):
            rendered[name] = [place(name, v, i) for i, v in enumerate(value)]
        else:
            rendered[name] = place(name, value, None)
    return rendered, copies
