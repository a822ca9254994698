"""Reading a miniwdl run directory: the calls section of the metadata and the failures.

A run directory holds ``call-<name>[-<shard>-<n>]/`` folders with ``stdout.txt``,
``stderr.txt``, ``command``, ``inputs.json``, then ``outputs.json`` (done) or ``error.json``
(failed); the run's own ``error.json`` has the failing call as its ``cause``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .records import ABORTED, TERMINAL, failure, iso_time

Locate = Callable[[Path], str]  # a local path -> what the API reports (path or s3:// URI)

STOPPED_ERRORS = ("Terminated", "Interrupted")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def call_name_and_shard(folder_name: str) -> tuple[str, int]:
    """``call-t-0-1`` -> ("t", 0); ``call-t`` -> ("t", -1). WDL names have no dashes."""
    parts = folder_name.removeprefix("call-").split("-")
    shard = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    return parts[0], shard


def job_label(workflow_name: str, folder_name: str) -> str:
    """Cromwell's job key: ``wf.task:shard-or-NA:attempt``."""
    name, shard = call_name_and_shard(folder_name)
    return f"{workflow_name}.{name}:{'NA' if shard < 0 else shard}:1"


def _cause(error: dict[str, Any]) -> dict[str, Any]:
    cause = error.get("cause")
    return cause if isinstance(cause, dict) else error


def call_failure_message(
    workflow_name: str, folder_name: str, error: dict[str, Any], locate: Locate
) -> str:
    """The message Cromwell would give for a failed job (task, return code, stderr)."""
    cause = _cause(error)
    job = job_label(workflow_name, folder_name)
    stderr_file = cause.get("stderr_file")
    stderr = locate(Path(stderr_file)) if stderr_file else None
    if cause.get("error") == "CommandFailed":
        message = (
            f"Job {job} exited with return code {cause.get('exit_status')} which has not been"
            " declared as a valid return code. See 'continueOnReturnCode' runtime attribute for"
            " more details."
        )
    else:
        detail = cause.get("message") or ""
        message = f"Job {job} failed: {cause.get('error', 'error')}{': ' if detail else ''}{detail}"
    if stderr:
        message += f" Check the content of stderr for potential additional information: {stderr}."
    return message


def run_failures(
    run_dir: Path, workflow_name: str, locate: Locate, log_tail: str
) -> list[dict[str, Any]]:
    """The workflow's ``failures`` from the run's ``error.json`` (or miniwdl's log)."""
    error = read_json(run_dir / "error.json")
    if not isinstance(error, dict):
        return [failure("Workflow failed", failure(f"miniwdl failed: {log_tail.strip()}"))]
    cause = _cause(error)
    call_dir = cause.get("dir")
    if cause is not error and call_dir and Path(call_dir).name.startswith("call-"):
        folder = Path(call_dir).name
        message = call_failure_message(workflow_name, folder, error, locate)
        return [failure("Workflow failed", failure(message))]
    detail = cause.get("message") or cause.get("error") or "unknown error"
    return [failure("Workflow failed", failure(str(detail)))]


def _started_at(folder: Path) -> float:
    inputs = folder / "inputs.json"  # written when the call starts
    return (inputs if inputs.exists() else folder).stat().st_mtime


def _finished_at(folder: Path) -> float | None:
    for name in ("outputs.json", "error.json"):
        path = folder / name
        if path.exists():
            return path.stat().st_mtime
    return None


def _map_output_files(value: Any, run_dir: Path, locate: Locate) -> Any:
    """Strings that are files inside the run directory become what ``locate`` says."""
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        inside = path.resolve().is_relative_to(run_dir.resolve())
        return locate(path) if inside and path.is_file() else value
    if isinstance(value, list):
        return [_map_output_files(item, run_dir, locate) for item in value]
    if isinstance(value, dict):
        return {key: _map_output_files(item, run_dir, locate) for key, item in value.items()}
    return value


def _call_status(error: Any, outputs: Any, workflow_status: str) -> str:
    if isinstance(outputs, dict):
        return "Done"
    if isinstance(error, dict):
        return "Aborted" if _cause(error).get("error") in STOPPED_ERRORS else "Failed"
    if workflow_status in TERMINAL:
        return "Aborted" if workflow_status == ABORTED else "Failed"
    return "Running"


def scan_call(
    folder: Path, run_dir: Path, workflow_name: str, workflow_status: str, locate: Locate
) -> dict[str, Any]:
    """One call attempt's metadata."""
    _, shard = call_name_and_shard(folder.name)
    error = read_json(folder / "error.json")
    outputs = read_json(folder / "outputs.json")
    status = _call_status(error, outputs, workflow_status)
    attempt: dict[str, Any] = {
        "executionStatus": status,
        "shardIndex": shard,
        "attempt": 1,
        "backend": "Local",
        "callRoot": locate(folder),
        "stdout": locate(folder / "stdout.txt"),
        "stderr": locate(folder / "stderr.txt"),
        "inputs": read_json(folder / "inputs.json") or {},
        "start": iso_time(_started_at(folder)),
    }
    command = folder / "command"
    if command.exists():
        attempt["commandLine"] = command.read_text(errors="replace")
    finished = _finished_at(folder)
    if finished is not None:
        attempt["end"] = iso_time(finished)
    if isinstance(outputs, dict):
        attempt["returnCode"] = 0
        attempt["outputs"] = {
            key.split(".", 1)[-1]: _map_output_files(value, run_dir, locate)
            for key, value in outputs.items()
        }
    if isinstance(error, dict):
        exit_status = _cause(error).get("exit_status")
        if isinstance(exit_status, int):
            attempt["returnCode"] = exit_status
        if status == "Failed":
            message = call_failure_message(workflow_name, folder.name, error, locate)
            attempt["failures"] = [failure(message)]
    return attempt


def scan_calls(
    run_dir: Path, workflow_name: str, workflow_status: str, locate: Locate
) -> dict[str, list[dict[str, Any]]]:
    """The ``calls`` section: ``{"wf.task": [attempt, ...]}`` ordered by shard."""
    calls: dict[str, list[dict[str, Any]]] = {}
    if not run_dir.is_dir():
        return calls
    for folder in sorted(run_dir.glob("call-*")):
        if folder.is_dir():
            name, _ = call_name_and_shard(folder.name)
            attempt = scan_call(folder, run_dir, workflow_name, workflow_status, locate)
            calls.setdefault(f"{workflow_name}.{name}", []).append(attempt)
    for attempts in calls.values():
        attempts.sort(key=lambda attempt: attempt["shardIndex"])
    return calls
