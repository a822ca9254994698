"""Worker CPU to keep active jobs fresh (Docker + Cromwell, mixed), at a baseline and at 10x it.

    FERRY_BENCH_ACTIVE=10000       active jobs at the measured level (the baseline is a tenth)
    FERRY_BENCH_DOCKER=500         of them Docker jobs with a real container each (the rest are
                                   Cromwell jobs); the baseline has a tenth of these too
    FERRY_BENCH_DOCKER_RUNNING=5   of the Docker containers, this many really run (`sleep`); the
                                   others exist in the "created" state (cheap: no process)
    FERRY_BENCH_MINUTE_S=60        the steady stretch measured per level

Goal (printed, not asserted): < 5 % of one core at 10,000 active jobs, growing with pages of the
executors' answers, not with jobs.

Real parts only: the simulated Cromwell test server (its workflows Running for a day, one Job row
per workflow, executor ``cromwell:<name>`` of a registered server) and the machine's Docker
engine (containers labelled as the Docker executor's, one Job row per container). All jobs were
submitted an hour ago and none changes state: the steady state a worker keeps.

The worker's loop is run in this process as ``poll_active`` runs it in a steady state (a cycle,
then ``wait_for_exits`` for FERRY_POLL_INTERVAL_S: the Docker executor follows the engine's
events meanwhile), with the production schedule (FERRY_POLL_* defaults of config.settings.base,
not the tests' "every job every cycle"). CPU is the process's user + system time
(``resource.getrusage``) over wall time: the Cromwell server and PostgreSQL run in other
processes. Also shown: the SQL queries and Job model instances of one steady cycle, and Cromwell requests
per minute (its own counters).

A second test: Cromwell workflows end one after the other, one job of each pair watched (an open
stream's lease on it); the time from each workflow's end (Cromwell's own) to the worker's event
moving the job off RUNNING, watched against unwatched.
"""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import docker
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import services
from api.models import Event, User, Workspace
from api.watches import WatchScope, close_watch, open_watch
from executors.docker import LABEL_EXECUTOR, LABEL_JOB, container_name
from operations import runner
from operations.cromwell_servers import server_create
from operations.models import Job
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker

from .reporting import env_number, percentile, show

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

pytest_plugins = ["tests.harness.cromwell"]

GOAL_PERCENT = 5.0
DOCKER_ALIAS = "local-docker"
IMAGE = "ferry/busybox:latest"
RUN_FOR_S = 24 * 3600.0
# The production schedule (config.settings.base defaults), not the tests' zeros.
PRODUCTION_SCHEDULE = (
    "FERRY_POLL_INTERVAL_S",
    "FERRY_POLL_PAGE",
    "FERRY_POLL_WATCHED_S",
    "FERRY_POLL_UNWATCHED_S",
    "FERRY_POLL_EVENTS_RECONCILE_S",
    "FERRY_POLL_NEW_S",
)


def active_count() -> int:
    return int(env_number("FERRY_BENCH_ACTIVE", 10_000))


def docker_count() -> int:
    return int(env_number("FERRY_BENCH_DOCKER", 500))


def docker_running() -> int:
    return int(env_number("FERRY_BENCH_DOCKER_RUNNING", 5))


def minute_s() -> float:
    return env_number("FERRY_BENCH_MINUTE_S", 60.0)


@dataclass
class Level:
    label: str
    cromwell_jobs: int
    docker_jobs: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    cycles: int = 0
    cromwell_requests: int = 0
    queries_per_cycle: int = 0
    rows_per_cycle: float = 0.0

    @property
    def jobs(self) -> int:
        return self.cromwell_jobs + self.docker_jobs

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else 0.0


# ------------------------------------------------------------------------------------ the parts


@pytest.fixture
def production_schedule(settings: Any) -> Any:
    from config.settings import base

    for name in PRODUCTION_SCHEDULE:
        setattr(settings, name, getattr(base, name))
    return settings


@pytest.fixture
def cromwell(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    cromwell_sim.settings(sim_start_s=0.0, sim_run_s=RUN_FOR_S, sim_fail_fraction=0.0)
    try:
        yield cromwell_sim
    finally:
        cromwell_sim.reset(workflows=True)


@pytest.fixture
def engine() -> Iterator[Any]:
    ensure_docker()
    ensure_busybox_image(IMAGE)
    client = docker.from_env(timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def containers(engine: Any) -> Iterator[list[str]]:
    """Names of the containers made for the run, all removed at the end."""
    made: list[str] = []
    try:
        yield made
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: _remove(engine, name), made))


def _remove(engine: Any, name: str) -> None:
    with suppress(docker.errors.NotFound):
        engine.api.remove_container(name, force=True)


def make_container(engine: Any, job_id: uuid.UUID, run: bool) -> str:
    """A container as the Docker executor names and labels it: running ``sleep`` or created."""
    name = container_name(Job(id=job_id))
    created = engine.api.create_container(
        IMAGE,
        command=["sleep", "3600"],
        name=name,
        labels={LABEL_EXECUTOR: DOCKER_ALIAS, LABEL_JOB: str(job_id)},
        host_config=engine.api.create_host_config(network_mode="none"),
    )
    if run:
        engine.api.start(created["Id"])
    return str(created["Id"])


def job_row(job_id: uuid.UUID, alias: str, external_id: str, where: tuple[User, Workspace]) -> Job:
    owner, workspace = where
    an_hour_ago = timezone.now() - timedelta(hours=1)
    return Job(
        id=job_id,
        workspace=workspace,
        owner=owner,
        status=JobStatus.RUNNING.value,
        executor=alias,
        external_id=external_id,
        submitted_at=an_hour_ago,
        started_at=an_hour_ago,
        attempts=1,
    )


def add_jobs(
    level: Level,
    server: CromwellServer,
    alias: str,
    engine: Any,
    containers: list[str],
    where: tuple[User, Workspace],
) -> None:
    """Bring the active jobs up to ``level``'s numbers (the rows the earlier level left stay)."""
    have_cromwell = Job.objects.filter(executor=alias).count()
    have_docker = Job.objects.filter(executor=DOCKER_ALIAS).count()
    ids = server.simulate_bulk(level.cromwell_jobs - have_cromwell, status="Running")
    rows = [job_row(uuid.UUID(wid), alias, wid, where) for wid in ids]
    new_docker = [uuid.uuid4() for _ in range(level.docker_jobs - have_docker)]
    running_left = max(0, docker_running() - have_docker)
    with ThreadPoolExecutor(4) as pool:
        made = list(
            pool.map(
                lambda pair: make_container(engine, pair[1], run=pair[0] < running_left),
                enumerate(new_docker),
            )
        )
    containers.extend(container_name(Job(id=job_id)) for job_id in new_docker)
    rows += [
        job_row(job_id, DOCKER_ALIAS, cid, where)
        for job_id, cid in zip(new_docker, made, strict=True)
    ]
    Job.objects.bulk_create(rows, batch_size=1000)


# ------------------------------------------------------------------------------------ measuring


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(seconds: float) -> int:
    """The poll loop's steady state for ``seconds``: a cycle, then wait for exits; cycles run."""
    cycles = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        runner.poll_cycle()
        runner.wait_for_exits(float(django_settings.FERRY_POLL_INTERVAL_S))
        cycles += 1
    return cycles


@contextmanager
def counting_rows() -> Iterator[list[int]]:
    loaded = [0]

    def count(sender: Any, **kwargs: Any) -> None:
        loaded[0] += 1

    post_init.connect(count, sender=Job, weak=False)
    try:
        yield loaded
    finally:
        post_init.disconnect(count, sender=Job)


def measure(level: Level, server: CromwellServer) -> None:
    run_worker(min(20.0, minute_s() / 3))  # settle: first observations recorded
    requests_before = int(server.counters().get("_total", 0))
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    level.cycles = run_worker(minute_s())
    level.cpu_s = cpu_seconds() - cpu_before
    level.wall_s = time.monotonic() - wall_before
    level.cromwell_requests = int(server.counters().get("_total", 0)) - requests_before
    samples = 10
    with CaptureQueriesContext(connection) as queries, counting_rows() as rows:
        for _ in range(samples):
            runner.poll_cycle()
            time.sleep(float(django_settings.FERRY_POLL_INTERVAL_S))
    level.queries_per_cycle = round(len(queries.captured_queries) / samples)
    level.rows_per_cycle = rows[0] / samples


def report(levels: list[Level]) -> None:
    base = levels[0]
    rows = []
    for level in levels:
        per_minute = 60.0 / level.wall_s if level.wall_s else 0.0
        rows.append(
            [
                f"{level.jobs:,} ({level.cromwell_jobs:,} Cromwell + {level.docker_jobs:,} Docker)",
                f"{level.percent:.2f} %",
                "yes" if level.percent < GOAL_PERCENT else "NO",
                f"{level.percent / base.percent:.1f}x" if base.percent else "-",
                f"{level.jobs / base.jobs:.0f}x",
                f"{level.cycles * per_minute:.0f}",
                f"{level.cromwell_requests * per_minute:.0f}",
                level.queries_per_cycle,
                f"{level.rows_per_cycle:.0f}",
            ]
        )
    show(
        f"Worker CPU to keep active jobs fresh, per steady minute (goal: < {GOAL_PERCENT:g} % "
        "of one core at 10,000, growing with pages, not with jobs)",
        [
            "active jobs",
            "CPU of one core",
            f"< {GOAL_PERCENT:g} %",
            "CPU vs baseline",
            "jobs vs baseline",
            "cycles/min",
            "Cromwell requests/min",
            "SQL queries/cycle",
            "Job instances/cycle",
        ],
        rows,
    )


def test_worker_cpu_to_keep_active_jobs_fresh(
    cromwell: CromwellServer,
    engine: Any,
    containers: list[str],
    production_schedule: Any,
    transactional_db: Any,
) -> None:
    total, in_docker = active_count(), docker_count()
    levels = [
        Level("baseline", (total - in_docker) // 10, in_docker // 10),
        Level("measured", total - in_docker, in_docker),
    ]
    owner = services.user_create(email="worker-bench@example.org", password=None)
    workspace = services.workspace_create(user=owner, name="Worker benchmark")
    server = server_create(name="worker-bench", url=cromwell.url)
    assert server.healthy, server.health_message
    for level in levels:
        add_jobs(level, cromwell, server.executor_alias, engine, containers, (owner, workspace))
        measure(level, cromwell)
    report(levels)
    still = Job.objects.filter(status=JobStatus.RUNNING.value).count()
    assert still == levels[-1].jobs, "no job changed state (the steady state was measured)"


# ----------------------------------------------------------------- watched jobs are seen sooner

PAIRS = 12
FIRST_END_S = 8.0
SPREAD_S = 1.7


def ended_at(server: CromwellServer, ids: list[str]) -> dict[str, float]:
    from executors.cromwell.client import CromwellClient

    rows = CromwellClient(server.url).query_ids(ids)
    return {
        str(row["id"]): datetime.fromisoformat(str(row["end"]).replace("Z", "+00:00")).timestamp()
        for row in rows
        if row.get("end")
    }


def seen_at(job_ids: list[str]) -> dict[str, float]:
    """When the worker moved each job off RUNNING (its event row)."""
    events = Event.objects.filter(
        job_id__in=job_ids, kind="job.status", payload__from=JobStatus.RUNNING.value
    )
    return {str(e.job_id): e.created_at.timestamp() for e in events}


def test_watched_jobs_are_seen_finished_sooner(
    cromwell: CromwellServer, production_schedule: Any, transactional_db: Any
) -> None:
    """Workflows end one after the other; of each pair one job is watched (an open stream's
    lease on it) and one is not. Latency: Cromwell's end time to the worker's event row."""
    owner = services.user_create(email="latency-bench@example.org", password=None)
    workspace = services.workspace_create(user=owner, name="Latency benchmark")
    server = server_create(name="latency-bench", url=cromwell.url)
    ids: list[tuple[str, str]] = []
    for number in range(PAIRS):
        # Failed runs: their finalize reads Cromwell's failure only (no bucket here).
        cromwell.settings(
            sim_start_s=0.0, sim_run_s=FIRST_END_S + number * SPREAD_S, sim_fail_fraction=1.0
        )
        watched, unwatched = cromwell.simulate_bulk(2, status="Running")
        ids.append((watched, unwatched))
    rows = [
        job_row(uuid.UUID(wid), server.executor_alias, wid, (owner, workspace))
        for pair in ids
        for wid in pair
    ]
    Job.objects.bulk_create(rows)
    leases = [open_watch(WatchScope(job=watched)) for watched, _ in ids]
    try:
        run_worker(FIRST_END_S + PAIRS * SPREAD_S + 2 * production_schedule.FERRY_POLL_UNWATCHED_S)
    finally:
        for lease in leases:
            close_watch(lease)
    every = [wid for pair in ids for wid in pair]
    ends, seen = ended_at(cromwell, every), seen_at(every)
    rows_out = []
    for label, chosen in (("watched", [w for w, _ in ids]), ("unwatched", [u for _, u in ids])):
        latencies = sorted(seen[wid] - ends[wid] for wid in chosen if wid in seen and wid in ends)
        assert len(latencies) == len(chosen), f"every {label} job was seen finished"
        rows_out.append(
            [
                label,
                len(latencies),
                f"{percentile(latencies, 0.5):.2f}",
                f"{latencies[-1]:.2f}",
            ]
        )
    show(
        "Workflow end -> the worker's event, watched vs unwatched jobs (production schedule: "
        f"watched every {production_schedule.FERRY_POLL_WATCHED_S:g} s, others every "
        f"{production_schedule.FERRY_POLL_UNWATCHED_S:g} s)",
        ["jobs", "n", "p50 s", "max s"],
        rows_out,
    )
