"""The metadata document of a workflow and the ``includeKey``/``excludeKey`` filter."""

from __future__ import annotations

import json
from typing import Any

from .records import WorkflowRecord, iso_time

ALWAYS_KEPT = ("id",)
CALL_KEYS_ALWAYS_KEPT = ("shardIndex", "attempt")


def labels_with_id(record: WorkflowRecord) -> dict[str, str]:
    """Cromwell adds ``cromwell-workflow-id`` to every workflow's labels."""
    return {"cromwell-workflow-id": f"cromwell-{record.id}", **record.labels}


def build_metadata(
    record: WorkflowRecord, calls: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The full metadata of ``record``; ``calls`` is its current call section."""
    metadata: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "submission": iso_time(record.submitted_at),
        "labels": labels_with_id(record),
        "inputs": record.inputs,
        "outputs": record.outputs,
        "calls": calls,
        "submittedFiles": {
            "workflow": record.source,
            "workflowUrl": record.workflow_url or "",
            "root": "",
            "options": json.dumps(record.options, indent=2),
            "inputs": json.dumps(record.inputs),
            "workflowType": "WDL",
            "workflowTypeVersion": record.workflow_type_version or "1.0",
            "labels": json.dumps(record.labels),
        },
        "actualWorkflowLanguage": "WDL",
        "actualWorkflowLanguageVersion": record.workflow_type_version or "1.0",
        "metadataSource": "Unarchived",
    }
    optional = {
        "workflowName": record.name,
        "start": iso_time(record.started_at),
        "end": iso_time(record.ended_at),
        "workflowRoot": record.workflow_root,
    }
    metadata.update({key: value for key, value in optional.items() if value is not None})
    if record.failures:
        metadata["failures"] = record.failures
    return metadata


def _matches(key: str, prefixes: list[str]) -> bool:
    return any(key.startswith(prefix) for prefix in prefixes)


def _keep(key: str, include: list[str], exclude: list[str]) -> bool:
    if include and not _matches(key, include):
        return False
    return not _matches(key, exclude)


def _filter_attempt(attempt: dict[str, Any], include: list[str], exclude: list[str]) -> dict:
    kept = {k: v for k, v in attempt.items() if _keep(k, include, exclude)}
    if not kept:
        return {}
    for key in CALL_KEYS_ALWAYS_KEPT:
        if key in attempt:
            kept.setdefault(key, attempt[key])
    return kept


def _filter_calls(
    calls: dict[str, list[dict[str, Any]]], include: list[str], exclude: list[str]
) -> dict[str, list[dict[str, Any]]]:
    if include and _matches("calls", include):
        include = []  # "calls" asked for as a whole: only the exclusions apply inside
    filtered: dict[str, list[dict[str, Any]]] = {}
    for name, attempts in calls.items():
        kept = [a for a in (_filter_attempt(x, include, exclude) for x in attempts) if a]
        if kept:
            filtered[name] = kept
    return filtered


def filter_metadata(
    metadata: dict[str, Any], include: list[str], exclude: list[str]
) -> dict[str, Any]:
    """Keep keys starting with an ``include`` prefix (all if none) and drop those starting
    with an ``exclude`` prefix, at the top level and inside each call."""
    if not include and not exclude:
        return metadata
    filtered: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ALWAYS_KEPT:
            filtered[key] = value
        elif key == "calls":
            if _matches("calls", exclude):
                continue
            calls = _filter_calls(value, include, exclude)
            if calls or (include and _matches("calls", include)):
                filtered[key] = calls
        elif _keep(key, include, exclude):
            filtered[key] = value
    return filtered


def logs_of(record: WorkflowRecord, calls: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``GET .../logs``: stdout/stderr of every call attempt."""
    logs = {
        name: [
            {
                key: attempt[key]
                for key in ("stdout", "stderr", "shardIndex", "attempt")
                if key in attempt
            }
            for attempt in attempts
        ]
        for name, attempts in calls.items()
    }
    return {"id": record.id, "calls": logs}
