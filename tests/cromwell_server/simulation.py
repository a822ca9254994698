"""Simulated mode: workflows don't run; each moves Submitted -> Running -> Succeeded/Failed
along the clock (computed when read, so 10,000 in flight cost nothing between requests)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from WDL import Type

from .records import (
    ABORTED,
    ABORTING,
    FAILED,
    ON_HOLD,
    RUNNING,
    SUBMITTED,
    SUCCEEDED,
    WorkflowRecord,
    failure,
    new_workflow_id,
)
from .wdl_tools import LoadedWorkflow, WorkflowProblem, load_workflow_text

BULK_WORKFLOW_NAME = "simulated"


class SimulationSettings:
    """Timings and failure fraction; changeable while the server runs."""

    def __init__(
        self, start_s: float, run_s: float, fail_fraction: float, abort_s: float, bucket: str
    ) -> None:
        self.start_s = start_s
        self.run_s = run_s
        self.fail_fraction = fail_fraction
        self.abort_s = abort_s
        self.bucket = bucket

    def as_dict(self) -> dict[str, float]:
        return {
            "sim_start_s": self.start_s,
            "sim_run_s": self.run_s,
            "sim_fail_fraction": self.fail_fraction,
            "sim_abort_s": self.abort_s,
        }


def _fraction_of(workflow_id: str) -> float:
    """A stable number in [0, 1) for an id: which workflows fail doesn't change on restart."""
    digest = hashlib.sha256(workflow_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _fabricate(wdl_type: Type.Base, uri_base: str, index: int = 0) -> Any:
    if isinstance(wdl_type, Type.File):
        return f"{uri_base}/file-{index}.txt"
    if isinstance(wdl_type, Type.Directory):
        return f"{uri_base}/dir-{index}/"
    if isinstance(wdl_type, Type.Array):
        return [_fabricate(wdl_type.item_type, uri_base, i) for i in range(2)]
    if isinstance(wdl_type, Type.Map):
        return {"key": _fabricate(wdl_type.item_type[1], uri_base, index)}
    if isinstance(wdl_type, Type.Pair):
        return {
            "left": _fabricate(wdl_type.left_type, uri_base, 0),
            "right": _fabricate(wdl_type.right_type, uri_base, 1),
        }
    if isinstance(wdl_type, Type.StructInstance):
        members = wdl_type.members or {}
        return {name: _fabricate(t, f"{uri_base}/{name}", index) for name, t in members.items()}
    if isinstance(wdl_type, Type.Int):
        return index + 1
    if isinstance(wdl_type, Type.Float):
        return index + 0.5
    if isinstance(wdl_type, Type.Boolean):
        return True
    return f"simulated value {index}"


class Simulator:
    """Creates simulated records and moves them along."""

    def __init__(self, settings: SimulationSettings) -> None:
        self.settings = settings
        self._loaded_cache: dict[str, LoadedWorkflow | WorkflowProblem] = {}
        self._cache_lock = threading.Lock()

    def _loaded(self, source: str) -> LoadedWorkflow:
        key = hashlib.sha256(source.encode()).hexdigest()
        with self._cache_lock:
            cached = self._loaded_cache.get(key)
        if cached is None:
            try:
                cached = load_workflow_text(source)
            except WorkflowProblem as problem:
                cached = problem
            with self._cache_lock:
                self._loaded_cache[key] = cached
        if isinstance(cached, WorkflowProblem):
            raise cached
        return cached

    def _outputs(self, record: WorkflowRecord, output_types: dict[str, Type.Base]) -> dict:
        outputs = {}
        for name, wdl_type in output_types.items():
            base = f"s3://{self.settings.bucket}/{record.name}/{record.id}/outputs/{name}"
            outputs[name] = _fabricate(wdl_type, base)
        return outputs

    def _task_failure(self, record: WorkflowRecord, task: str) -> list[dict[str, Any]]:
        stderr = f"s3://{self.settings.bucket}/{record.name}/{record.id}/call-{task}/stderr.txt"
        message = (
            f"Job {record.name}.{task}:NA:1 exited with return code 1 which has not been declared"
            " as a valid return code. See 'continueOnReturnCode' runtime attribute for more"
            f" details. Check the content of stderr for potential additional information: {stderr}."
        )
        return [failure("Workflow failed", failure(message))]

    def prepare(self, record: WorkflowRecord, now: float) -> None:
        """Plan a submitted record: its times, and its outputs or failures."""
        record.simulated = True
        self._schedule(record, now)
        try:
            loaded = self._loaded(record.source)
        except WorkflowProblem as problem:
            record.sim_failures = [
                failure("Workflow input processing failed", *map(failure, problem.messages))
            ]
            return
        record.name = loaded.name
        if _fraction_of(record.id) < self.settings.fail_fraction:
            record.sim_failures = self._task_failure(record, "simulated_task")
        else:
            record.sim_outputs = self._outputs(record, loaded.output_types)

    def _schedule(self, record: WorkflowRecord, now: float) -> None:
        record.sim_run_at = now + self.settings.start_s
        record.sim_end_at = record.sim_run_at + self.settings.run_s

    def release_hold(self, record: WorkflowRecord, now: float) -> None:
        self._schedule(record, now)
        record.status = SUBMITTED

    def bulk(self, count: int, now: float, status: str, lag_s: float) -> list[WorkflowRecord]:
        """``count`` simulated workflows, already Running (or as ``status`` says)."""
        created = []
        for _ in range(count):
            record = WorkflowRecord(
                id=new_workflow_id(),
                status=SUBMITTED,
                submitted_at=now,
                visible_at=now + lag_s,
                name=BULK_WORKFLOW_NAME,
                simulated=True,
            )
            record.sim_run_at = now if status == RUNNING else now + self.settings.start_s
            record.sim_end_at = now + self.settings.start_s + self.settings.run_s
            if _fraction_of(record.id) < self.settings.fail_fraction:
                record.sim_failures = self._task_failure(record, "simulated_task")
            else:
                base = f"s3://{self.settings.bucket}/{BULK_WORKFLOW_NAME}/{record.id}/outputs"
                record.sim_outputs = {f"{BULK_WORKFLOW_NAME}.out": f"{base}/out.txt"}
            self.advance(record, now)
            created.append(record)
        return created

    def abort(self, record: WorkflowRecord, now: float) -> None:
        if record.status in (ON_HOLD, SUBMITTED):
            record.status = ABORTED
            record.ended_at = now
        else:
            record.status = ABORTING
            record.abort_requested_at = now

    def advance(self, record: WorkflowRecord, now: float) -> bool:
        """Move ``record`` to where the clock says; True if it changed."""
        before = record.status
        if record.status == ABORTING:
            if now >= (record.abort_requested_at or now) + self.settings.abort_s:
                record.status = ABORTED
                record.ended_at = now
        elif record.status in (SUBMITTED, RUNNING):
            self._advance_running(record, now)
        return record.status != before

    def _advance_running(self, record: WorkflowRecord, now: float) -> None:
        run_at = record.sim_run_at if record.sim_run_at is not None else now
        end_at = record.sim_end_at if record.sim_end_at is not None else now
        if record.sim_failures and record.name is None and now >= run_at:
            record.status = FAILED  # the document itself was refused
            record.ended_at = run_at
            record.failures = record.sim_failures
            return
        if now >= run_at and record.status == SUBMITTED:
            record.status = RUNNING
            record.started_at = run_at
        if now >= end_at:
            record.ended_at = end_at
            if record.sim_failures:
                record.status = FAILED
                record.failures = record.sim_failures
            else:
                record.status = SUCCEEDED
                record.outputs = record.sim_outputs
