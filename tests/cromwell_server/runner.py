"""Real runs: each workflow is one ``miniwdl run`` process (its own session, so an abort ends
its whole process group; miniwdl stops its task containers on SIGTERM)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .config import ServerConfig
from .publish import LocalPaths, S3Publisher
from .records import (
    ABORTED,
    ABORTING,
    FAILED,
    ON_HOLD,
    RUNNING,
    SUBMITTED,
    SUCCEEDED,
    WorkflowRecord,
    WorkflowStore,
    failure,
)
from .rundir import Locate, run_failures, scan_calls
from .storage import S3Transfers
from .wdl_tools import LoadedWorkflow, WorkflowProblem, check_inputs, input_type, load_workflow
from .wdl_tools import map_files as map_wdl_files

log = logging.getLogger("cromwell_server.runner")

MINIWDL_CFG = """\
[docker_swarm]
auto_init = true
[task_runtime]
command_shell = /bin/sh
"""
ABORT_GRACE_S = 30.0
SHUTDOWN_GRACE_S = 20.0
PROCESSING_FAILED = "Workflow input processing failed"


@dataclass
class Outcome:
    """How a run ended, before its files are published."""

    status: str
    loaded: LoadedWorkflow | None = None
    raw_outputs: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # processing failures (no run)
    run_failed: bool = False  # miniwdl failed: read the run directory


def _miniwdl_executable(config: ServerConfig) -> str:
    if config.miniwdl:
        return config.miniwdl
    beside_python = Path(sys.executable).parent / "miniwdl"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("miniwdl") or "miniwdl"


def _extract_zip(archive: Path, destination: Path) -> None:
    """Unpack imports, refusing members that would land outside ``destination``."""
    root = destination.resolve()
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.namelist():
            if not (root / member).resolve().is_relative_to(root):
                raise WorkflowProblem([f"workflowDependencies member outside the bundle: {member}"])
        bundle.extractall(root)


class WorkflowRunner:
    """Starts, aborts and finishes real workflow runs."""

    def __init__(
        self, config: ServerConfig, store: WorkflowStore, transfers: S3Transfers | None
    ) -> None:
        self.config = config
        self.store = store
        self.transfers = transfers
        self.miniwdl = _miniwdl_executable(config)
        self.miniwdl_cfg = config.work_dir / "miniwdl.cfg"
        self.miniwdl_cfg.write_text(MINIWDL_CFG)
        self._slots = threading.Semaphore(config.max_concurrent)
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stopping = threading.Event()

    # -- paths ---------------------------------------------------------------------------

    def workflow_dir(self, workflow_id: str) -> Path:
        return self.config.runs_dir / workflow_id

    def run_dir(self, workflow_id: str) -> Path:
        return self.workflow_dir(workflow_id) / "run"

    # -- control -------------------------------------------------------------------------

    def start(self, workflow_id: str) -> None:
        """Run the workflow in a background thread (a no-op if one is already on it)."""
        with self._lock:
            thread = self._threads.get(workflow_id)
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(
                target=self._run, args=(workflow_id,), name=f"run-{workflow_id}", daemon=True
            )
            self._threads[workflow_id] = thread
        thread.start()

    def resume(self, records: list[WorkflowRecord]) -> None:
        """After a restart: rerun what was submitted or running; finish what was aborting."""
        for record in records:
            if record.simulated:
                continue
            if record.status == ABORTING:
                self.store.update(record.id, status=ABORTED, ended_at=time.time())
            elif record.status in (SUBMITTED, RUNNING):
                self.start(record.id)

    def abort(self, workflow_id: str) -> str:
        """Abort a non-final workflow; returns its new status."""
        with self.store.lock:
            record = self.store.get_any(workflow_id)
            assert record is not None
            now = time.time()
            if record.status in (ON_HOLD, SUBMITTED):
                self.store.update(workflow_id, status=ABORTED, abort_requested_at=now, ended_at=now)
                return ABORTED
            if record.status == RUNNING:
                self.store.update(workflow_id, status=ABORTING, abort_requested_at=now)
            status = record.status
        self._signal(workflow_id, signal.SIGTERM)
        return status

    def _signal(self, workflow_id: str, signum: int) -> None:
        with self._lock:
            process = self._processes.get(workflow_id)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)

    def shutdown(self) -> None:
        """Stop every run (its record stays Running, to be rerun on the next start)."""
        self._stopping.set()
        with self._lock:
            running = list(self._processes)
            threads = list(self._threads.values())
        for workflow_id in running:
            self._signal(workflow_id, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for workflow_id in running:
            self._signal(workflow_id, signal.SIGKILL)

    def live_calls(self, record: WorkflowRecord) -> dict[str, list[dict[str, Any]]]:
        """The calls section: stored once final, read from the run directory before."""
        if record.is_terminal or record.status == ON_HOLD:
            return record.calls
        run_dir = self.run_dir(record.id)
        return scan_calls(
            run_dir, record.name or "workflow", record.status, LocalPaths(run_dir).locate
        )

    # -- one run -------------------------------------------------------------------------

    def _claim(self, workflow_id: str) -> WorkflowRecord | None:
        """Submitted -> Running (or Running again after a restart); None if not to run."""
        with self.store.lock:
            record = self.store.get_any(workflow_id)
            if record is None or self._stopping.is_set():
                return None
            if record.status not in (SUBMITTED, RUNNING) or record.abort_requested_at:
                return None
            return self.store.update(
                workflow_id,
                status=RUNNING,
                started_at=record.started_at or time.time(),
                attempt=record.attempt + 1,
                workflow_root=str(self.run_dir(workflow_id)),
            )

    def _run(self, workflow_id: str) -> None:
        with self._slots:
            record = self._claim(workflow_id)
            if record is None:
                return
            try:
                self._run_claimed(record)
            except KeyError:
                log.info("workflow %s was forgotten while it ran", workflow_id)

    def _run_claimed(self, record: WorkflowRecord) -> None:
        try:
            outcome = self._execute(record)
        except Exception as error:
            log.exception("workflow %s: the test server failed to run it", record.id)
            outcome = Outcome(FAILED, problems=[f"{type(error).__name__}: {error}"])
        if outcome is None:
            return  # shutting down: the record stays Running and is rerun on start
        try:
            self._finish(record, outcome)
        except Exception as error:
            if self.store.get_any(record.id) is None:
                raise KeyError(record.id) from error
            log.exception("workflow %s: finishing failed", record.id)
            message = f"Could not publish the results: {type(error).__name__}: {error}"
            self.store.update(
                record.id,
                status=FAILED,
                ended_at=time.time(),
                failures=[failure("Workflow failed", failure(message))],
            )

    def _prepare_sources(self, record: WorkflowRecord) -> Path:
        workflow_dir = self.workflow_dir(record.id)
        source_dir = workflow_dir / "src"
        for stale in (source_dir, workflow_dir / "run", workflow_dir / "inputs"):
            shutil.rmtree(stale, ignore_errors=True)
        source_dir.mkdir(parents=True)
        archive = workflow_dir / "dependencies.zip"
        if archive.exists():
            _extract_zip(archive, source_dir)
        main = source_dir / "main.wdl"
        main.write_text(record.source)
        return main

    def _localize_inputs(self, loaded: LoadedWorkflow, record: WorkflowRecord) -> dict[str, Any]:
        """s3:// File inputs are downloaded into the workflow's folder and replaced."""
        folder = self.workflow_dir(record.id) / "inputs"
        counter = iter(range(1_000_000))

        def download(uri: str, is_directory: bool) -> str:
            if not uri.startswith("s3://"):
                return uri
            if self.transfers is None:
                raise WorkflowProblem([f"Cannot localize {uri}: no S3 endpoint configured"])
            name = uri.rstrip("/").rsplit("/", 1)[-1] or "input"
            target = folder / str(next(counter)) / name
            try:
                self.transfers.download(uri + ("/" if is_directory else ""), target)
            except Exception as error:
                raise WorkflowProblem([f"Failed to localize {uri}: {error}"]) from error
            return str(target)

        return {
            key: map_wdl_files(value, input_type(loaded, key), download)
            for key, value in record.inputs.items()
        }

    def _execute(self, record: WorkflowRecord) -> Outcome | None:
        try:
            main = self._prepare_sources(record)
            loaded = load_workflow(main, [main.parent])
            self.store.update(record.id, name=loaded.name)
            check_inputs(loaded, record.inputs)
            inputs = self._localize_inputs(loaded, record)
        except WorkflowProblem as problem:
            return Outcome(FAILED, problems=problem.messages)
        workflow_dir = self.workflow_dir(record.id)
        inputs_file = workflow_dir / "inputs.json"
        inputs_file.write_text(json.dumps(inputs))
        if self._abort_requested(record.id):
            return Outcome(ABORTED, loaded=loaded)
        returncode = self._run_miniwdl(record.id, main, inputs_file)
        if self._abort_requested(record.id):
            return Outcome(ABORTED, loaded=loaded)
        if returncode is None or self._stopping.is_set():
            return None
        if returncode == 0:
            result = json.loads((workflow_dir / "miniwdl.stdout").read_text())
            return Outcome(SUCCEEDED, loaded=loaded, raw_outputs=result.get("outputs", {}))
        return Outcome(FAILED, loaded=loaded, run_failed=True)

    def _abort_requested(self, workflow_id: str) -> bool:
        current = self.store.get_any(workflow_id)
        return current is not None and current.abort_requested_at is not None

    def _run_miniwdl(self, workflow_id: str, main: Path, inputs_file: Path) -> int | None:
        """Run miniwdl to the end; None if an abort came before it started."""
        workflow_dir = self.workflow_dir(workflow_id)
        argv = [
            self.miniwdl,
            "run",
            str(main),
            "-i",
            str(inputs_file),
            "--dir",
            f"{self.run_dir(workflow_id)}/.",
        ]
        env = {**os.environ, "MINIWDL_CFG": str(self.miniwdl_cfg)}
        with (
            open(workflow_dir / "miniwdl.stdout", "wb") as stdout,
            open(workflow_dir / "miniwdl.log", "wb") as stderr,
        ):
            with self._lock:
                if self._stopping.is_set():
                    return None
                process = subprocess.Popen(
                    argv,
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=workflow_dir,
                    start_new_session=True,
                )
                self._processes[workflow_id] = process
            if self._abort_requested(workflow_id):
                self._signal(workflow_id, signal.SIGTERM)
            try:
                return self._wait(workflow_id, process)
            finally:
                with self._lock:
                    self._processes.pop(workflow_id, None)

    def _wait(self, workflow_id: str, process: subprocess.Popen[bytes]) -> int:
        """Wait for miniwdl; after an abort, kill its group if it outstays the grace time."""
        while True:
            try:
                return process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                current = self.store.get_any(workflow_id)
                asked = current.abort_requested_at if current is not None else None
                if asked is not None and time.time() - asked > ABORT_GRACE_S:
                    self._signal(workflow_id, signal.SIGKILL)

    # -- finishing -----------------------------------------------------------------------

    def _publisher(self, record: WorkflowRecord, name: str) -> LocalPaths | S3Publisher:
        run_dir = self.run_dir(record.id)
        if self.config.outputs == "local" or self.transfers is None:
            return LocalPaths(run_dir)
        return S3Publisher(
            self.transfers, f"{name}/{record.id}", run_dir, self.workflow_dir(record.id)
        )

    def _log_tail(self, workflow_id: str, limit: int = 2000) -> str:
        path = self.workflow_dir(workflow_id) / "miniwdl.log"
        try:
            return path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _finish(self, record: WorkflowRecord, outcome: Outcome) -> None:
        name = outcome.loaded.name if outcome.loaded else (record.name or "workflow")
        publisher = self._publisher(record, name)
        locate: Locate = publisher.locate
        run_dir = self.run_dir(record.id)
        changes: dict[str, Any] = {"status": outcome.status, "ended_at": time.time()}
        if outcome.problems:
            changes["failures"] = [failure(PROCESSING_FAILED, *map(failure, outcome.problems))]
        if outcome.run_failed:
            tail = self._log_tail(record.id)
            changes["failures"] = run_failures(run_dir, name, locate, tail)
        if outcome.status == SUCCEEDED and outcome.loaded is not None:
            changes["outputs"] = self._publish_outputs(record, outcome, publisher)
        changes["calls"] = scan_calls(run_dir, name, outcome.status, locate)
        if run_dir.is_dir():
            changes["workflow_root"] = locate(run_dir)
        updated = self.store.update(record.id, **changes)
        self._call_back(updated)

    def _publish_outputs(
        self, record: WorkflowRecord, outcome: Outcome, publisher: LocalPaths | S3Publisher
    ) -> dict[str, Any]:
        assert outcome.loaded is not None
        types = outcome.loaded.output_types
        outputs = {
            key: map_wdl_files(value, types.get(key), publisher.locate_output)
            for key, value in outcome.raw_outputs.items()
        }
        destination = record.options.get("final_workflow_outputs_dir")
        if isinstance(destination, str) and destination:
            relative = bool(record.options.get("use_relative_output_paths", False))
            publisher.copy_final_outputs(destination, relative)
        return outputs

    def _call_back(self, record: WorkflowRecord) -> None:
        """Cromwell >= 86: POST the final state to ``workflow_callback_uri`` if given."""
        uri = record.options.get("workflow_callback_uri")
        if not isinstance(uri, str) or not uri:
            return
        body = {
            "workflowId": record.id,
            "state": record.status,
            "outputs": record.outputs,
            "failures": record.failures,
        }
        for attempt in range(3):
            try:
                requests.post(uri, json=body, timeout=10).raise_for_status()
                return
            except requests.RequestException as error:
                log.warning("callback to %s failed (attempt %d): %s", uri, attempt + 1, error)
                time.sleep(1.0 + attempt)
