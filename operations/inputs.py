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

from api.exceptions import ApplicationError
from api.models import File, FileStatus
from api.selectors import files_visible_to
from api.storage import is_local, local_path
from executors.specs import Mount

from .spec import value_errors

SCALARS = ("integer", "float", "string", "boolean", "option")


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)


def validate_inputs(spec: dict[str, Any], raw: Any, *, user: Any) -> dict[str, Any]:
    """Return the validated inputs (defaults filled in; files as id strings) or raise a 400."""
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
            if "default" in input_spec and input_spec["default"] is not None:
                values[name] = input_spec["default"]
            elif input_spec.get("required", True):
                errors.add(path, "This input is required.")
            continue
        checked = _check(input_spec, raw[name], path, errors, user)
        if checked is not None:
            values[name] = checked
    if errors.by_path:
        first_path, first = next(iter(errors.by_path.items()))
        raise ApplicationError(
            f"{first_path}: {first[0]}", details=errors.by_path, code="invalid_inputs"
        )
    return values


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


def _check_structured(
    spec: dict[str, Any], value: Any, path: str, errors: _Errors, user: Any
) -> dict[str, Any] | None:
    """A map (an object keyed by strings), a pair (``{"left", "right"}``) or a struct (an
    object of its members), as the WDL engines' inputs JSON takes them."""
    kind = spec["type"]
    if not isinstance(value, dict):
        errors.add(path, f"Expected an object (a {kind}).")
        return None
    if kind == "map":
        parts = {str(key): spec["values"] for key in value}
        for key in value:
            if not _is_map_key(spec.get("keys", "string"), str(key)):
                errors.add(f"{path}.{key}", f"This map's keys are {spec['keys']} values.")
    elif kind == "pair":
        parts = {"left": spec["left"], "right": spec["right"]}
    else:
        parts = dict(spec["members"])
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
    return float(value) if spec.get("type") == "float" else value


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
    return str(file.pk)


def container_values(
    spec: dict[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], list[Mount]]:
    """File inputs become container paths under /inputs/<input>/; returns (values, read-only mounts)."""
    ids = [v for v in _file_ids(spec, values)]
    files = {str(f.pk): f for f in File.objects.filter(pk__in=ids)}
    mounts: list[Mount] = []
    rendered: dict[str, Any] = {}

    def place(name: str, file_id: str, index: int | None) -> str:
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
        input_spec = spec["inputs"][name]
        if input_spec.get("type") == "file":
            if isinstance(value, list):
                rendered[name] = [place(name, v, i) for i, v in enumerate(value)]
            else:
                rendered[name] = place(name, value, None)
        elif input_spec.get("type") == "list" and input_spec["items"].get("type") == "file":
            rendered[name] = [place(name, v, i) for i, v in enumerate(value)]
        else:
            rendered[name] = value
    return rendered, mounts


def _file_ids(spec: dict[str, Any], values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        input_spec = spec["inputs"][name]
        is_file = input_spec.get("type") == "file" or (
            input_spec.get("type") == "list" and input_spec["items"].get("type") == "file"
        )
        if is_file:
            out.extend(value if isinstance(value, list) else [value])
    return out
