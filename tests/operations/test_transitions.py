"""The state machines' writers under a race: two callers move the same row from the same
status at once; the conditional UPDATE lets exactly one win, and only the winner records an
Event (jobs: operations.transitions; files: api.file_states).

The race is forced, not hoped for: the first caller holds its transaction open (its ``along``
waits) until Postgres shows the second caller's UPDATE waiting on the row lock; then the first
commits and the second's UPDATE finds the status changed and writes nothing.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from api.file_states import FileTransitionNotAllowed, file_transition
from api.models import File, FileEvent, FileStatus, FileType, User, Workspace
from api.services import file_create_from_upload, file_publish_results, workspace_create
from operations.models import Event, Job
from operations.states import JobStatus
from operations.transitions import transition
from tests.conftest import spool
from tests.operations_fixtures import make_echo_operation

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _in_thread(work: Callable[[], bool], results: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            results[name] = exc
        finally:
            connection.close()  # each thread has its own connection

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def race(
    first: Callable[[Callable[[], None]], bool], second: Callable[[], bool]
) -> tuple[bool, bool]:
    """Run ``first`` (given an ``along`` that holds its transaction open) and ``second`` so that
    ``second``'s UPDATE is waiting on the row ``first`` changed when ``first`` commits."""
    holding, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def along() -> None:
        holding.set()
        release.wait(WAIT_S)

    threads = [_in_thread(lambda: first(along), results, "first")]
    try:
        assert holding.wait(WAIT_S), f"the first transition did not win: {results}"
        threads.append(_in_thread(second, results, "second"))
        deadline = time.monotonic() + WAIT_S
        while _backends_waiting_on_a_lock() < 1:
            assert "second" not in results, f"the second did not wait for the row: {results}"
            assert time.monotonic() < deadline, "the second transition never reached the row"
            time.sleep(0.02)
    finally:
        release.set()
        for thread in threads:
            thread.join(WAIT_S)
    for outcome in results.values():
        if isinstance(outcome, BaseException):
            raise outcome
    return results["first"], results["second"]


@pytest.fixture
def owner(transactional_db: Any) -> User:
    return User.objects.create_user(email="racer@example.org", password="pw-racer-123456")


@pytest.fixture
def space(owner: User) -> Workspace:
    return workspace_create(user=owner, name="race")


def _job(space: Workspace, owner: User, status: JobStatus = JobStatus.QUEUED) -> Job:
    return Job.objects.create(
        operation=make_echo_operation(),
        workspace=space,
        owner=owner,
        executor="local-docker",
        status=status.value,
        run_spec={},
    )


def _pending_file(space: Workspace, owner: User, **fields: Any) -> File:
    return File.objects.create(
        workspace=space,
        owner=owner,
        name="result.txt",
        size=1,
        file_type=FileType.TEXT,
        status=FileStatus.PENDING,
        storage_uri=f"file:///nowhere/{time.monotonic_ns()}",
        **fields,
    )


def test_two_racing_job_transitions_leave_one_winner_and_one_event(
    space: Workspace, owner: User
) -> None:
    job = _job(space, owner)
    mine, theirs = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)

    won = race(
        lambda along: transition(mine, JobStatus.SUBMITTED, expected=JobStatus.QUEUED, along=along),
        lambda: transition(theirs, JobStatus.CANCELLING, expected=JobStatus.QUEUED),
    )

    assert won == (True, False)
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED
    events = list(Event.objects.filter(job=job, kind="job.status"))
    assert [(e.payload["from"], e.payload["to"]) for e in events] == [("queued", "submitted")]


def test_two_racing_file_transitions_leave_one_winner_and_one_event(
    space: Workspace, owner: User
) -> None:
    file = _pending_file(space, owner)
    mine, theirs = File.objects.get(pk=file.pk), File.objects.get(pk=file.pk)

    won = race(
        lambda along: file_transition(mine, FileStatus.READY, along=along),
        lambda: file_transition(theirs, FileStatus.INVALID, invalid_reason="not a table"),
    )

    assert won == (True, False)
    file.refresh_from_db()
    assert file.status == FileStatus.READY
    assert file.invalid_reason == ""
    events = list(FileEvent.objects.filter(file=file))
    assert [(e.kind, e.payload["from"], e.payload["to"]) for e in events] == [
        ("file.status", "pending", "ready")
    ]
    assert events[0].workspace_id == space.pk


def test_file_table_refuses_leaving_a_final_status(space: Workspace, owner: User) -> None:
    file = _pending_file(space, owner)
    assert file_transition(file, FileStatus.INVALID, invalid_reason="bad header")
    with pytest.raises(FileTransitionNotAllowed):
        file_transition(file, FileStatus.READY)
    assert not file_transition(  # a stale caller who still sees it pending loses, quietly
        File(pk=file.pk, workspace=space, status=FileStatus.PENDING), FileStatus.READY
    )
    file.refresh_from_db()
    assert file.status == FileStatus.INVALID
    assert FileEvent.objects.filter(file=file).count() == 1


def test_publishing_a_jobs_results_records_an_event_per_file(space: Workspace, owner: User) -> None:
    job = _job(space, owner, JobStatus.FINALIZING)
    good = _pending_file(space, owner, produced_by=job)
    bad = _pending_file(space, owner, produced_by=job, invalid_reason="not JSON")

    assert transition(
        job,
        JobStatus.SUCCEEDED,
        expected=JobStatus.FINALIZING,
        along=lambda: file_publish_results(job=job),
    )

    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.status, bad.status) == (FileStatus.READY, FileStatus.INVALID)
    moves = {(e.file_id, e.payload["from"], e.payload["to"]) for e in FileEvent.objects.all()}
    assert moves == {(good.pk, "pending", "ready"), (bad.pk, "pending", "invalid")}


def test_a_file_created_ready_or_invalid_has_its_one_event(space: Workspace, owner: User) -> None:
    ready = file_create_from_upload(
        user=owner, workspace=space, upload=spool(b"a\tb\n1\t2\n", "t.tsv"), name="t.tsv"
    )
    invalid = file_create_from_upload(
        user=owner, workspace=space, upload=spool(b"a\tb\n1\n", "r.tsv"), name="r.tsv"
    )

    assert (ready.status, invalid.status) == (FileStatus.READY, FileStatus.INVALID)
    moves = {(e.file_id, e.payload["from"], e.payload["to"]) for e in FileEvent.objects.all()}
    assert moves == {(ready.pk, None, "ready"), (invalid.pk, None, "invalid")}


def _status_writes(path: Path) -> list[str]:
    """Calls in ``path`` that write a status column: ``.update(status=…)``,
    ``.update_or_create(…, status=…)``, ``x.status = …``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        writes_status = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"update", "bulk_update", "update_or_create"}
            and any(k.arg == "status" for k in node.keywords)
        )
        if writes_status:
            found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_status_columns_are_written_only_by_their_state_machines() -> None:
    writers = {ROOT / "api" / "file_states.py", ROOT / "operations" / "transitions.py"}
    found = [
        hit
        for package in ("api", "operations")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts and path not in writers
        for hit in _status_writes(path)
    ]
    assert found == [], "status written outside api.file_states / operations.transitions"
