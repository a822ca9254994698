"""Workflow records: one JSON file each under ``<work>/records``, kept in a dict in memory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ON_HOLD = "On Hold"
SUBMITTED = "Submitted"
RUNNING = "Running"
ABORTING = "Aborting"
ABORTED = "Aborted"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STATUSES = (ON_HOLD, SUBMITTED, RUNNING, ABORTING, ABORTED, SUCCEEDED, FAILED)
TERMINAL = frozenset({ABORTED, SUCCEEDED, FAILED})

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_workflow_id(text: str) -> bool:
    return bool(_UUID.match(text))


def new_workflow_id() -> str:
    return str(uuid.uuid4())


def iso_time(epoch: float | None) -> str | None:
    """Cromwell's timestamps: UTC, milliseconds, ``Z``."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """An ISO 8601 date-time (``Z`` or an offset; naive means UTC) as epoch seconds."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def failure(message: str, *caused_by: dict[str, Any]) -> dict[str, Any]:
    """One entry of Cromwell's nested ``failures`` lists."""
    return {"message": message, "causedBy": list(caused_by)}


@dataclass
class WorkflowRecord:
    """What the server knows about one workflow (persisted as JSON)."""

    id: str
    status: str
    submitted_at: float
    visible_at: float  # before this, the API answers as if the id were unknown
    source: str = ""
    workflow_url: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workflow_type_version: str | None = None
    has_dependencies: bool = False
    name: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    workflow_root: str | None = None
    abort_requested_at: float | None = None
    attempt: int = 0  # how many times a run was started (a restart reruns)
    simulated: bool = False
    sim_run_at: float | None = None
    sim_end_at: float | None = None
    sim_outputs: dict[str, Any] = field(default_factory=dict)
    sim_failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


class WorkflowStore:
    """Records by id, thread-safe. ``advance`` is applied to a record before each read
    (the simulated mode moves its workflows along the clock that way)."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._records: dict[str, WorkflowRecord] = {}
        self.advance: Callable[[WorkflowRecord, float], bool] = lambda record, now: False

    # -- persistence --------------------------------------------------------------------

    def load(self) -> list[WorkflowRecord]:
        """Read every saved record (bulk files first, single files override them)."""
        loaded: dict[str, WorkflowRecord] = {}
        for bulk in sorted(self.records_dir.glob("*.jsonl")):
            for line in bulk.read_text().splitlines():
                if line.strip():
                    record = WorkflowRecord.from_json(json.loads(line))
                    loaded[record.id] = record
        for single in sorted(self.records_dir.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                record = WorkflowRecord.from_json(json.loads(single.read_text()))
                loaded[record.id] = record
        with self.lock:
            self._records.update(loaded)
        return list(loaded.values())

    def save(self, record: WorkflowRecord) -> None:
        with self.lock:
            data = json.dumps(record.to_json())
            path = self.records_dir / f"{record.id}.json"
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(data)
            os.replace(temporary, path)

    def _save_bulk(self, records: list[WorkflowRecord]) -> None:
        path = self.records_dir / f"bulk-{uuid.uuid4().hex}.jsonl"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as out:
            for record in records:
                out.write(json.dumps(record.to_json()) + "\n")
        os.replace(temporary, path)

    def forget_all(self) -> None:
        with self.lock:
            self._records.clear()
            for path in [*self.records_dir.glob("*.json"), *self.records_dir.glob("*.jsonl")]:
                path.unlink(missing_ok=True)

    # -- access -------------------------------------------------------------------------

    def add(self, record: WorkflowRecord) -> None:
        with self.lock:
            self._records[record.id] = record
            self.save(record)

    def add_many(self, records: list[WorkflowRecord]) -> None:
        with self.lock:
            for record in records:
                self._records[record.id] = record
            self._save_bulk(records)

    def exists(self, workflow_id: str) -> bool:
        """Known at all, even while still invisible after its submission."""
        with self.lock:
            return workflow_id.lower() in self._records

    def get(self, workflow_id: str, now: float | None = None) -> WorkflowRecord | None:
        """The record if it is visible (its post-submit lag is over), else None."""
        now = time.time() if now is None else now
        with self.lock:
            record = self._records.get(workflow_id.lower())
            if record is None or now < record.visible_at:
                return None
            self._advance(record, now)
            return record

    def get_known(self, workflow_id: str, now: float | None = None) -> WorkflowRecord | None:
        """The record even while its post-submit lag hides it from status and query (the
        workflow store has it from the submit on), moved along the clock."""
        now = time.time() if now is None else now
        with self.lock:
            record = self._records.get(workflow_id.lower())
            if record is not None:
                self._advance(record, now)
            return record

    def get_any(self, workflow_id: str) -> WorkflowRecord | None:
        """The record whether visible or not (for the runner)."""
        with self.lock:
            return self._records.get(workflow_id.lower())

    def visible(self, ids: Iterable[str] | None, now: float) -> list[WorkflowRecord]:
        """Visible records, of the given ids (cost O(len(ids))) or all of them."""
        with self.lock:
            if ids is None:
                candidates: Iterable[WorkflowRecord] = self._records.values()
            else:
                candidates = [r for i in ids if (r := self._records.get(i.lower())) is not None]
            found = [record for record in candidates if now >= record.visible_at]
            for record in found:
                self._advance(record, now)
            return found

    def update(self, workflow_id: str, **changes: Any) -> WorkflowRecord:
        with self.lock:
            record = self._records[workflow_id]
            for key, value in changes.items():
                setattr(record, key, value)
            self.save(record)
            return record

    def all_records(self) -> list[WorkflowRecord]:
        with self.lock:
            return list(self._records.values())

    def _advance(self, record: WorkflowRecord, now: float) -> None:
        if record.simulated and not record.is_terminal:
            self.advance(record, now)
