"""Following 10,000 in-flight Cromwell workflows: Ferry's batched poll against one request per job.

    FERRY_BENCH_WORKFLOWS=10000   simulated workflows in flight (all Running for the whole run)
    FERRY_BENCH_CYCLES=3          poll cycles timed per level (the median is reported)
    FERRY_BENCH_PER_JOB=10000     status requests the one-request-per-job pattern really sends;
                                  fewer than FERRY_BENCH_WORKFLOWS: its cycle time is extrapolated
                                  from that sample (the table says so)

Goals (printed, not asserted): one poll cycle over every in-flight workflow makes at most 10 HTTP
requests and takes less than 2 s.

Same run, same simulated Cromwell test server (``tests/cromwell_server --simulate``, one process,
werkzeug's threaded server), the same workflows, one after the other:

* Executor level: ``CromwellExecutor.poll`` over stand-in jobs (id + run_spec) whose ids are the
  workflow ids, default options (``query_page_size`` 1000).
* Per-job pattern: ``GET /api/workflows/v1/{id}/status`` for each workflow, one requests.Session.
* Ferry level: the same workflows as RUNNING Job rows in Postgres (ids = workflow ids, a WDL
  operation, run specs and inputs of a real Cromwell job's size), executor ``cromwell:bench`` (a
  registered CromwellServer row pointing at the test server); a round of
  ``operations.runner.poll_cycle()`` over every job (the loop takes one page of 1,000 jobs per
  cycle: 10 cycles for 10,000) timed whole: its SQL queries (counted), the executor's query
  pages, applying each observation. One more round under cProfile shows where that time goes.

HTTP requests are read from the server's own counters (every Cromwell API request, the control
API excluded). Asserted (sanity only): the batched paths make one request per page of 1,000 ids
(10 for 10,000) and observe every workflow as running, no job changes state; the per-job answers
are all "Running".
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import services
from executors.base import RunState
from executors.cromwell import CromwellExecutor
from operations.cromwell_servers import server_create
from operations.models import Job, Operation, OperationMode
from operations.runner import poll_cycle
from operations.states import JobStatus

from .reporting import env_number, show

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

pytest_plugins = ["tests.harness.cromwell"]

T = TypeVar("T")

REQUESTS_GOAL = 10
SECONDS_GOAL = 2.0
PAGE_SIZE = 1000  # CromwellExecutor's default query_page_size, set explicitly for the table
SERVER_NAME = "bench"
RUN_FOR_S = 24 * 3600.0  # simulated workflows stay Running this long
HTTP_TIMEOUT = (5, 60)
WORKFLOW_NAME = "simulated"
WDL_SOURCE = """\
version 1.0
workflow simulated {
  input {
    File reads
    Int threads = 4
  }
  call count { input: reads = reads, threads = threads }
  output { File out = count.out }
}
task count {
  input {
    File reads
    Int threads
  }
  command <<< wc -l ~{reads} > out.txt >>>
  runtime { docker: "ferry/busybox:latest" cpu: threads }
  output { File out = "out.txt" }
}
"""
INPUTS_SPEC: dict[str, Any] = {
    "reads": {"type": "file", "required": True, "description": "Reads to count."},
    "threads": {"type": "integer", "required": False, "default": 4},
}
OUTPUTS_SPEC: dict[str, Any] = {"out": {"type": "file", "required": True}}
OPERATION_SPEC: dict[str, Any] = {
    "name": "simulated",
    "version": "1.0",
    "description": "A small WDL workflow (the benchmark's jobs never run it).",
    "mode": "wdl",
    "workflow": "main.wdl",
    "inputs": INPUTS_SPEC,
    "outputs": OUTPUTS_SPEC,
    "wdl": {"workflow_name": WORKFLOW_NAME, "wdl_version": "1.0", "imports": [], "files": []},
}


def run_spec_of(reads: str) -> dict[str, Any]:
    """What a Cromwell job's run spec holds once submitted (operations.wdl_runs); the poll
    doesn't read it, but poll_cycle loads it from Postgres with every active job."""
    uri = f"s3://bench-bucket/workspaces/bench/{reads}/reads.fastq"
    return {
        "mode": "wdl",
        "workflow_dir": "/srv/ferry/operations/simulated/0123abcd",
        "main": "main.wdl",
        "workflow_name": WORKFLOW_NAME,
        "values": {"reads": reads, "threads": 4},
        "files": {reads: uri},
        "outputs": OUTPUTS_SPEC,
        "limits": {"timeout_s": 86400},
        "inputs": {"simulated.reads": uri, "simulated.threads": 4},
        "workflow_source": WDL_SOURCE,
        "workflow_dependencies_zip_b64": None,
    }


def workflows_count() -> int:
    return int(env_number("FERRY_BENCH_WORKFLOWS", 10_000))


def cycles_count() -> int:
    return int(env_number("FERRY_BENCH_CYCLES", 3))


def per_job_sample() -> int:
    return min(int(env_number("FERRY_BENCH_PER_JOB", workflows_count())), workflows_count())


@dataclass
class StandInJob:
    """What the executor reads of a job (operations.models.Job has these attributes)."""

    id: uuid.UUID
    run_spec: dict[str, Any]


@dataclass(frozen=True)
class Cycle:
    seconds: float
    requests: int
    sql_queries: int | None = None


@dataclass
class Level:
    """Figures of one way of following the workflows."""

    label: str
    cycles: list[Cycle]
    requests_per_cycle: int = 0
    note: str = ""

    @property
    def seconds(self) -> float:
        return statistics.median(cycle.seconds for cycle in self.cycles)

    @property
    def requests(self) -> int:
        return self.requests_per_cycle or max(cycle.requests for cycle in self.cycles)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def in_flight(cromwell_sim: CromwellServer) -> Iterator[list[str]]:
    """``FERRY_BENCH_WORKFLOWS`` simulated workflows, visible at once and Running for a day."""
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    cromwell_sim.settings(sim_start_s=0.0, sim_run_s=RUN_FOR_S, sim_fail_fraction=0.0)
    ids = cromwell_sim.simulate_bulk(workflows_count(), status="Running")
    assert len(set(ids)) == workflows_count()
    try:
        yield ids
    finally:
        cromwell_sim.reset(workflows=True)


# ------------------------------------------------------------------------------------ measuring


def api_requests(server: CromwellServer) -> int:
    return int(server.counters().get("_total", 0))


def timed_cycle(server: CromwellServer, run: Callable[[], T]) -> tuple[Cycle, T]:
    """``run()`` timed, with the API requests the server counted meanwhile; and its result."""
    before = api_requests(server)
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    return Cycle(seconds, api_requests(server) - before), result


def executor_level(server: CromwellServer, ids: Sequence[str]) -> Level:
    executor = CromwellExecutor(
        "cromwell-bench-executor", {"url": server.url, "query_page_size": PAGE_SIZE}
    )
    jobs = [StandInJob(uuid.UUID(wid), run_spec_of(str(uuid.uuid4()))) for wid in ids]
    cycles = []
    for _ in range(cycles_count()):
        cycle, observed = timed_cycle(server, lambda: executor.poll(jobs))
        cycles.append(cycle)
        assert set(observed) == {job.id for job in jobs}, "the poll must observe every job"
        states = {observation.state for observation in observed.values()}
        assert states == {RunState.RUNNING}, f"all simulated workflows run: {states}"
    return Level(f"CromwellExecutor.poll (pages of {PAGE_SIZE})", cycles)


def per_job_level(server: CromwellServer, ids: Sequence[str]) -> Level:
    """One GET .../status per workflow; a sample's time scaled to all ids if asked."""
    sample = list(ids[: per_job_sample()])

    def run() -> list[str]:
        statuses = []
        with requests.Session() as session:
            for workflow_id in sample:
                url = f"{server.url}/api/workflows/v1/{workflow_id}/status"
                response = session.get(url, timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                statuses.append(str(response.json()["status"]))
        return statuses

    measured, statuses = timed_cycle(server, run)
    assert statuses == ["Running"] * len(sample)
    scale = len(ids) / len(sample)
    note = "" if scale == 1 else f"{len(sample):,} sent, time x{scale:.1f}"
    cycle = Cycle(measured.seconds * scale, measured.requests)
    return Level("one GET /status per job", [cycle], requests_per_cycle=len(ids), note=note)


def create_jobs(server: CromwellServer, ids: Sequence[str]) -> str:
    """RUNNING jobs of a WDL operation whose ids are the workflow ids, on a registered server
    (``CromwellServer`` row, executor ``cromwell:bench``); returns that alias."""
    owner = services.user_create(email="cromwell-bench@example.org", password=None)
    workspace = services.workspace_create(user=owner, name="Cromwell poll benchmark")
    operation = Operation.objects.create(
        name="simulated",
        version="1.0",
        revision="0123abcd" * 8,
        description=OPERATION_SPEC["description"],
        mode=OperationMode.WDL,
        spec=OPERATION_SPEC,
        source="/srv/ferry/operations/simulated",
    )
    registered = server_create(
        name=SERVER_NAME, url=server.url, options={"query_page_size": PAGE_SIZE}
    )
    assert registered.healthy, registered.health_message
    alias = registered.executor_alias

    def job(workflow_id: str) -> Job:
        reads = str(uuid.uuid4())
        return Job(
            id=uuid.UUID(workflow_id),
            operation=operation,
            workspace=workspace,
            owner=owner,
            status=JobStatus.RUNNING.value,
            inputs={"reads": reads, "threads": 4},
            executor=alias,
            external_id=workflow_id,
            run_spec=run_spec_of(reads),
            attempts=1,
        )

    Job.objects.bulk_create((job(workflow_id) for workflow_id in ids), batch_size=1000)
    return alias


def full_round(pages: int) -> int:
    """Poll cycles until every job was asked about once: the poll loop takes one page of each
    executor's jobs per cycle (operations.runner.PollSchedule), ``pages`` of them in all."""
    active = 0
    for _ in range(pages):
        active = poll_cycle()
    return active


def ferry_level(server: CromwellServer, ids: Sequence[str]) -> Level:
    pages = -(-len(ids) // PAGE_SIZE)
    cycles = []
    for _ in range(cycles_count()):
        with CaptureQueriesContext(connection) as captured:
            measured, active = timed_cycle(server, lambda: full_round(pages))
        cycles.append(Cycle(measured.seconds, measured.requests, len(captured.captured_queries)))
        assert active == len(ids), f"every job stays active: {active}"
    return Level(f"Ferry, a round of poll_cycle() ({pages} pages, Postgres)", cycles)


def check_jobs_untouched(alias: str, count: int) -> None:
    running = Job.objects.filter(executor=alias, status=JobStatus.RUNNING.value, error_detail="")
    assert running.count() == count, "no job changed state or was marked unreachable"


# Parts of a round, as (label, callee, its caller), each a (file suffix, function).
CYCLE = ("operations/runner.py", "_poll_cycle")
POLL_EXECUTOR = ("operations/runner.py", "_poll_executor")
CYCLE_PARTS = (
    ("reconcile()", ("operations/runner.py", "reconcile"), CYCLE),
    ("choose the due jobs, load a page (PollSchedule.due)", ("operations/runner.py", "due"), CYCLE),
    ("executor.poll(jobs) (HTTP query pages)", ("executors/base.py", "poll"), POLL_EXECUTOR),
    ("record the poll and what changed", ("monitoring.py", "record_poll"), POLL_EXECUTOR),
    ("_apply() for each job", ("operations/runner.py", "_apply"), POLL_EXECUTOR),
    ("Job.objects.active().count()", ("query.py", "count"), CYCLE),
)
POLL_CYCLE = ("operations/runner.py", "poll_cycle")
Site = tuple[str, str]


def _matches(key: tuple[str, int, str], site: Site) -> bool:
    return key[0].endswith(site[0]) and key[2] == site[1]


def time_called_from(stats: pstats.Stats, callee: Site, caller: Site) -> float:
    """Cumulative seconds in ``callee`` when called directly by ``caller``."""
    total = 0.0
    for key, entry in stats.stats.items():  # type: ignore[attr-defined]
        if not _matches(key, callee):
            continue
        for caller_key, caller_entry in entry[4].items():
            if _matches(caller_key, caller):
                total += caller_entry[3]
    return total


def profile_cycle(pages: int) -> None:
    """One more round under cProfile: where its time goes (the profiler slows Python code
    more than waiting on sockets, so read the shares, not the seconds)."""
    profiler = cProfile.Profile()
    profiler.runcall(full_round, pages)
    stats = pstats.Stats(profiler)
    whole = next(
        entry[3]
        for key, entry in stats.stats.items()  # type: ignore[attr-defined]
        if _matches(key, POLL_CYCLE)
    )
    rows = []
    accounted = 0.0
    for label, site, caller in CYCLE_PARTS:
        seconds = time_called_from(stats, site, caller)
        accounted += seconds
        rows.append([label, f"{seconds:.3f}", f"{100 * seconds / whole:.0f} %"])
    rest = whole - accounted
    rows.append(
        ["the rest (grouping, id lists, ...)", f"{rest:.3f}", f"{100 * rest / whole:.0f} %"]
    )
    rows.append(["every poll_cycle() of the round under cProfile", f"{whole:.3f}", "100 %"])
    show("Where one Ferry poll round's time goes (cProfile)", ["part", "seconds", "share"], rows)


# ------------------------------------------------------------------------------------ reporting


def goal_mark(ok: bool) -> str:
    return "yes" if ok else "NO"


def report(levels: Sequence[Level], workflows: int) -> None:
    per_job = levels[-1]
    rows = []
    for level in levels:
        rows.append(
            [
                level.label,
                f"{level.requests:,}",
                goal_mark(level.requests <= REQUESTS_GOAL),
                f"{level.seconds:.3f}",
                goal_mark(level.seconds < SECONDS_GOAL),
                f"{per_job.seconds / level.seconds:.1f}" if level is not per_job else "1.0",
                f"{per_job.requests / level.requests:,.0f}" if level is not per_job else "1",
                level.note,
            ]
        )
    show(
        f"Poll cycle over {workflows:,} in-flight workflows (simulated Cromwell test server); "
        f"goals: <= {REQUESTS_GOAL} requests, < {SECONDS_GOAL:g} s; median of the cycles",
        [
            "how",
            "HTTP requests/cycle",
            "<= 10",
            "s/cycle",
            "< 2 s",
            "x faster than per-job",
            "x fewer requests",
            "note",
        ],
        rows,
    )
    detail = []
    for level in levels:
        for number, cycle in enumerate(level.cycles, start=1):
            sql = "" if cycle.sql_queries is None else str(cycle.sql_queries)
            detail.append([level.label, number, cycle.requests, f"{cycle.seconds:.3f}", sql])
    show("Each timed cycle", ["how", "cycle", "HTTP requests", "seconds", "SQL queries"], detail)


def test_poll_cycle_against_one_request_per_job(
    cromwell_sim: CromwellServer, in_flight: list[str], db: Any, settings: Any
) -> None:
    settings.FERRY_POLL_PAGE = PAGE_SIZE  # the loop's page is Cromwell's query page
    executor = executor_level(cromwell_sim, in_flight)
    alias = create_jobs(cromwell_sim, in_flight)
    ferry = ferry_level(cromwell_sim, in_flight)
    per_job = per_job_level(cromwell_sim, in_flight)
    report([executor, ferry, per_job], len(in_flight))
    pages = -(-len(in_flight) // PAGE_SIZE)  # 10 for 10,000 workflows: the goal
    profile_cycle(pages)
    check_jobs_untouched(alias, len(in_flight))
    for level in (executor, ferry):
        assert all(cycle.requests <= pages for cycle in level.cycles), (
            f"{level.label}: {[cycle.requests for cycle in level.cycles]} requests per cycle"
        )
    assert per_job.cycles[0].requests == per_job_sample()
