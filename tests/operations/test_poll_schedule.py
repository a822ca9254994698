"""What a poll cycle asks the executors about (operations.runner.PollSchedule), against the
simulated Cromwell test server: a steady cycle's work does not grow with the active jobs (the
same SQL queries, no Job instances, at 50 and at 500 of them), a round takes one executor page
per cycle and covers every job (reading plain values: a Job is loaded only to change it), and a job someone watches is seen finished in the next pass
while an unwatched one waits for its round. Cycles are driven one by one, never timed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import services
from api.models import StreamWatch, User, Workspace
from api.watches import WatchScope, close_watch, open_watch
from executors.cromwell.client import CromwellClient
from operations.cromwell_servers import server_create
from operations.models import Job
from operations.runner import poll_cycle
from operations.states import JobStatus
from tests.conftest import make_user

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.django_db

PAGE = 50
NEVER_S = 1e7  # an interval no test outlives: rounds never come due by themselves
RUN_FOR_S = 24 * 3600.0


@pytest.fixture
def sim(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    cromwell_sim.settings(sim_start_s=0.0, sim_run_s=RUN_FOR_S, sim_fail_fraction=0.0)
    yield cromwell_sim
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)


@pytest.fixture
def slow_rounds(settings: Any) -> Any:
    """Rounds that never come due by themselves; nothing counts as just submitted."""
    settings.FERRY_POLL_PAGE = PAGE
    settings.FERRY_POLL_UNWATCHED_S = NEVER_S
    settings.FERRY_POLL_EVENTS_RECONCILE_S = NEVER_S
    settings.FERRY_POLL_WATCHED_S = 0.0
    settings.FERRY_POLL_NEW_S = 0.0
    return settings


@pytest.fixture
def owner() -> User:
    return make_user("poller@example.org")


@pytest.fixture
def workspace(owner: User) -> Workspace:
    return services.workspace_create(user=owner, name="Polled")


def register(sim: CromwellServer) -> str:
    server = server_create(
        name=f"poll-{uuid.uuid4().hex[:8]}", url=sim.url, options={"query_page_size": 1000}
    )
    assert server.healthy, server.health_message
    return server.executor_alias


def running_jobs(alias: str, ids: list[str], owner: User, workspace: Workspace) -> list[Job]:
    """RUNNING jobs whose ids are the workflow ids, submitted an hour ago."""
    submitted = timezone.now() - timedelta(hours=1)
    return Job.objects.bulk_create(
        Job(
            id=uuid.UUID(workflow_id),
            workspace=workspace,
            owner=owner,
            status=JobStatus.RUNNING.value,
            executor=alias,
            external_id=workflow_id,
            submitted_at=submitted,
            started_at=submitted,
            attempts=1,
        )
        for workflow_id in ids
    )


@contextmanager
def counting_rows() -> Iterator[list[int]]:
    """[Job instances built] while inside (every model instance Django builds from a row)."""
    loaded = [0]

    def count(sender: Any, **kwargs: Any) -> None:
        loaded[0] += 1

    post_init.connect(count, sender=Job, weak=False)
    try:
        yield loaded
    finally:
        post_init.disconnect(count, sender=Job)


def measured_cycle(sim: CromwellServer) -> tuple[int, int, int]:
    """(SQL queries, Job instances built, Cromwell API requests) of one poll cycle."""
    before = int(sim.counters().get("_total", 0))
    with CaptureQueriesContext(connection) as queries, counting_rows() as rows:
        poll_cycle()
    return len(queries.captured_queries), rows[0], int(sim.counters().get("_total", 0)) - before


def test_a_steady_cycle_does_not_grow_with_the_active_jobs(
    sim: CromwellServer, slow_rounds: Any, owner: User, workspace: Workspace
) -> None:
    ids = sim.simulate_bulk(500, status="Running")
    alias = register(sim)
    running_jobs(alias, ids[:50], owner, workspace)
    poll_cycle()  # whatever was left from before settles
    at_50 = measured_cycle(sim)
    running_jobs(alias, ids[50:], owner, workspace)
    poll_cycle()
    at_500 = measured_cycle(sim)
    assert at_50 == at_500, f"(queries, rows, requests) at 50 jobs {at_50}, at 500 {at_500}"
    _, rows, requests = at_500
    assert rows == 0, "a steady cycle loads no job"
    assert requests == 0, "a steady cycle asks Cromwell nothing"


def test_a_round_takes_one_page_per_cycle_and_covers_every_job(
    sim: CromwellServer, slow_rounds: Any, owner: User, workspace: Workspace
) -> None:
    ids = sim.simulate_bulk(500, status="Running")
    alias = register(sim)
    running_jobs(alias, ids, owner, workspace)
    slow_rounds.FERRY_POLL_UNWATCHED_S = 0.0  # every cycle: the next page
    cycles = [measured_cycle(sim) for _ in range(10)]
    # Each step: one Cromwell query for a page, no Job instance (nothing changes state), and
    # never more queries than the first.
    assert {(rows, requests) for _, rows, requests in cycles} == {(0, 1)}, cycles
    assert all(queries <= cycles[0][0] for queries, _, _ in cycles), cycles
    # Ten pages of 50: every job was asked about once.
    assert Job.objects.filter(executor=alias, observed_state="running").count() == 500


def wait_until_finished(sim: CromwellServer, ids: list[str], timeout: float = 30) -> None:
    client = CromwellClient(sim.url)
    deadline = time.monotonic() + timeout
    while {client.status(workflow_id) for workflow_id in ids} != {"Succeeded"}:
        assert time.monotonic() < deadline, "the simulated workflows did not finish"
        time.sleep(0.1)


def test_a_watched_job_is_seen_finished_sooner_than_an_unwatched_one(
    sim: CromwellServer, slow_rounds: Any, owner: User, workspace: Workspace
) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=0.3, sim_fail_fraction=0.0)
    ids = sim.simulate_bulk(2, status="Running")
    alias = register(sim)
    watched, unwatched = running_jobs(alias, ids, owner, workspace)
    lease = open_watch(WatchScope(job=str(watched.pk)))
    try:
        wait_until_finished(sim, ids)
        passes_until_seen: dict[uuid.UUID, int] = {}
        for number in range(1, 6):
            poll_cycle()
            for job in (watched, unwatched):
                job.refresh_from_db()
                if job.status != JobStatus.RUNNING and job.pk not in passes_until_seen:
                    passes_until_seen[job.pk] = number
        assert passes_until_seen.get(watched.pk) == 1, passes_until_seen
        assert unwatched.pk not in passes_until_seen, "an unwatched job waits for its round"
        slow_rounds.FERRY_POLL_UNWATCHED_S = 0.0  # its round comes
        poll_cycle()
        unwatched.refresh_from_db()
        assert unwatched.status != JobStatus.RUNNING
    finally:
        close_watch(lease)
    assert not StreamWatch.objects.filter(pk__in=lease).exists()


def test_a_watched_workspace_makes_its_jobs_watched_and_an_expired_lease_does_not(
    sim: CromwellServer, slow_rounds: Any, owner: User, workspace: Workspace
) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=0.3, sim_fail_fraction=0.0)
    ids = sim.simulate_bulk(2, status="Running")
    alias = register(sim)
    other = services.workspace_create(user=owner, name="Not watched")
    (in_watched,) = running_jobs(alias, ids[:1], owner, workspace)
    (elsewhere,) = running_jobs(alias, ids[1:], owner, other)
    expired = open_watch(WatchScope(workspaces=(str(other.pk),)))
    StreamWatch.objects.filter(pk__in=expired).update(expires_at=timezone.now())
    lease = open_watch(WatchScope(workspaces=(str(workspace.pk),)))
    try:
        wait_until_finished(sim, ids)
        poll_cycle()
    finally:
        close_watch(lease)
    in_watched.refresh_from_db()
    elsewhere.refresh_from_db()
    assert in_watched.status != JobStatus.RUNNING
    assert elsewhere.status == JobStatus.RUNNING, "an expired lease watches nothing"
    assert not StreamWatch.objects.filter(pk__in=expired).exists(), "expired leases go"


def test_a_job_being_cancelled_is_tried_in_the_next_pass_not_in_its_round(
    sim: CromwellServer, slow_rounds: Any, owner: User, workspace: Workspace
) -> None:
    ids = sim.simulate_bulk(1, status="Running")
    alias = register(sim)
    (job,) = running_jobs(alias, ids, owner, workspace)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLING.value)
    aborts = int(sim.counters().get("abort", 0))
    poll_cycle()
    assert int(sim.counters().get("abort", 0)) == aborts + 1, sim.counters()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
