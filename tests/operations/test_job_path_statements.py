"""What a trivial Docker job costs the database on the worker's side (issue 14, P1): its
submit and the poll pass that sees it exit and finalizes it. A lease is taken in one statement
and given up in one, an event adds no savepoint of its own, and a job whose operation declares
no file output reads no result files and writes no relocation counters."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import User, Workspace
from operations import runner
from operations.models import Event, Job
from operations.services import build_run_spec
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

pytestmark = pytest.mark.django_db(transaction=True)

# The lease (take), the job, BEGIN, UPDATE, the event (with the event writers' lock and its
# NOTIFY in the same statement), COMMIT, the lease (give up).
SUBMIT_MAX_STATEMENTS = 7


@pytest.fixture(autouse=True)
def _engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


def _wait_until_exited(job: Job) -> None:
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = client.containers.list(all=True, filters={"label": f"ferry.job={job.pk}"})
            if found and found[0].status == "exited":
                return
            time.sleep(0.1)
        pytest.fail("the job's container did not exit")
    finally:
        client.close()


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [str(q["sql"]) for q in queries.captured_queries]


def _touching(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if f'"{table}"' in s]


def test_a_trivial_job_is_submitted_and_finalized_in_few_statements(
    workspace: Workspace, users: dict[str, User]
) -> None:
    operation = make_operation("noop", "true")
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        inputs={},
        executor="local-docker",
        run_spec=build_run_spec(operation, {}),
    )
    with CaptureQueriesContext(connection) as submit:
        runner.submit_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED, job.error_message
    submitted = _statements(submit)
    assert len(submitted) <= SUBMIT_MAX_STATEMENTS, "\n".join(submitted)
    assert len(_touching(submitted, "operations_lease")) == 2, submitted
    event_work = [s for s in submitted if "api_event" in s or "pg_notify" in s or "advisory" in s]
    assert len(event_work) == 1, event_work  # lock, row and NOTIFY in one statement

    _wait_until_exited(job)
    with CaptureQueriesContext(connection) as poll:
        runner.poll_cycle()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    polled = _statements(poll)
    assert not [s for s in polled if "SAVEPOINT" in s], polled
    assert len(_touching(polled, "operations_lease")) == 2, polled  # the finalize lease
    assert _touching(polled, "api_file") == [], polled
    assert _touching(polled, "operations_workercounter") == [], polled
    # What the engine was seen doing goes with the move it caused, not in an UPDATE of its own.
    observed_alone = [s for s in polled if s.startswith('UPDATE "operations_job" SET "observed')]
    assert observed_alone == [], observed_alone
    assert job.observed_state == "exited"
    assert job.observed_at is not None
    # A run first seen ended goes through RUNNING to FINALIZING in one transaction; the
    # history has every step.
    moves = [s for s in polled if s.startswith('UPDATE "operations_job" SET "status"')]
    assert len(moves) == 2, moves  # to FINALIZING (through RUNNING), to SUCCEEDED
    history = [e.payload["to"] for e in Event.objects.filter(job_id=job.pk).order_by("id")]
    assert history == ["submitted", "running", "finalizing", "succeeded"], history
    assert job.started_at is not None


def test_a_lease_held_by_a_live_holder_is_still_refused_and_a_free_one_taken(
    settings: Any,
) -> None:
    from operations import leases

    first, second = leases.new_holder(), leases.new_holder()
    assert leases.acquire("submit:x", first)
    assert not leases.acquire("submit:x", second)  # the first holder (this process) lives
    assert leases.acquire("submit:x", first)  # its own again
    leases.release("submit:x", first)
    assert leases.acquire("submit:x", second)
    leases.release("submit:x", second)
    assert not leases.is_held("submit:x")


def test_a_poll_of_an_executor_is_recorded_in_one_statement() -> None:
    from operations.models import ExecutorHealth
    from operations.monitoring import record_poll

    record_poll("local-docker", 0.01)  # the row is made on first use
    with CaptureQueriesContext(connection) as recorded:
        record_poll("local-docker", 0.02)
    assert len(recorded.captured_queries) == 1, _statements(recorded)
    health = ExecutorHealth.objects.get(alias="local-docker")
    assert health.polls_total == 2
    assert health.poll_seconds_total == pytest.approx(0.03)
    assert health.healthy


def test_the_passes_an_exit_wakes_the_loop_for_neither_reconcile_nor_expire_watches(
    workspace: Workspace, users: dict[str, User]
) -> None:
    """The poll loop reconciles (and removes expired stream watches) every
    HOUSEKEEPING_EVERY_S, not in each of the passes exit events wake it for."""
    operation = make_operation("noop", "true")
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        inputs={},
        executor="local-docker",
        run_spec=build_run_spec(operation, {}),
    )
    runner.submit_job(str(job.pk))
    _wait_until_exited(job)
    with CaptureQueriesContext(connection) as poll:
        runner._poll_cycle({job.pk}, housekeeping=False)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    polled = _statements(poll)
    assert not [s for s in polled if "\"status\" = 'queued'" in s], polled  # no stale QUEUED
    sweep = 'WHERE ("operations_job"."cleanup_pending" AND "operations_job"."updated_at"'
    assert not [s for s in polled if sweep in s], polled  # no cleanup sweep
    assert not [s for s in polled if s.startswith('DELETE FROM "api_streamwatch"')], polled
    assert runner.HOUSEKEEPING_EVERY_S <= 5.0  # well within the reconciler's 30 s


def test_polls_that_succeed_are_counted_in_one_write_a_second(settings: Any) -> None:
    """The loop's exit-woken passes poll many times a second under load: their counters are
    written at most every FERRY_POLL_RECORD_EVERY_S (a failure, or recovering, at once), and
    what is held is written when the loop ends."""
    from operations import monitoring
    from operations.models import ExecutorHealth

    settings.FERRY_POLL_RECORD_EVERY_S = 60.0
    alias = "held-polls"
    monitoring.record_poll(alias, 0.01)  # the first poll of the process: written at once
    assert ExecutorHealth.objects.get(alias=alias).polls_total == 1
    with CaptureQueriesContext(connection) as recorded:
        for _ in range(4):
            monitoring.record_poll(alias, 0.01)
    assert _statements(recorded) == []
    assert ExecutorHealth.objects.get(alias=alias).polls_total == 1
    monitoring.record_poll(alias, 0.01, RuntimeError("engine away"))
    health = ExecutorHealth.objects.get(alias=alias)
    assert (health.polls_total, health.healthy, health.errors_total) == (6, False, 1)
    monitoring.record_poll(alias, 0.01)  # recovered: at once
    assert ExecutorHealth.objects.get(alias=alias).healthy
    monitoring.record_poll(alias, 0.02)
    assert ExecutorHealth.objects.get(alias=alias).polls_total == 7
    monitoring.flush_polls()
    health = ExecutorHealth.objects.get(alias=alias)
    assert health.polls_total == 8
    assert health.last_poll_seconds == pytest.approx(0.02)
