"""A Cromwell outage while WDL jobs run on it: the test server first answers 503 to everything,
then drops every request (down). Ferry keeps polling meanwhile; no job fails for it, every job
finishes once the server is back, and the API (which answers from the database and never asks
Cromwell inline) is as fast during the outage as before.

The issue asks for "a minute"; the test scales it to 20 s (10 s of 503s, 10 s down), which is
some 40 poll cycles at the cadence used here (one every 0.25 s).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from api.models import User, Workspace
from api.services import workspace_create
from operations import runner
from operations.models import Job
from operations.states import TERMINAL, JobStatus
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401  (fixtures)
    EXECUTOR,
    FIXTURES,
    assert_scatter_outputs,
    cromwell,
    job_body,
    server_record,
    site_bucket,
    var_dir,
    workflows_labelled,
)
from tests.operations_fixtures import make_wdl_operation

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.slow

BASELINE_S = 6.0
STATUS_503_S = 10.0
DOWN_S = 10.0
POLL_EVERY_S = 0.25
FINISH_LIMIT_S = 180.0
NOISE_FLOOR_S = 0.050

NAP_WDL = """version 1.0

workflow nap {
  input {
    Int seconds = 18
  }
  call sleep_then_count { input: seconds = seconds }
  output {
    Int slept = sleep_then_count.slept
  }
}

task sleep_then_count {
  input {
    Int seconds
  }
  command <<<
    sleep ~{seconds} && echo ~{seconds}
  >>>
  output {
    Int slept = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
"""


class Poller:
    """The worker's poll loop, in a thread of its own (with its own database connection)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.cycles = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="poll-loop", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    runner.poll_cycle()
                except Exception as exc:  # a poll cycle must survive an outage by itself
                    self.errors.append(exc)
                self.cycles += 1
                self.stop.wait(POLL_EVERY_S)
        finally:
            connection.close()

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def measure(client: APIClient, paths: list[str], seconds: float) -> list[float]:
    """Latencies (s) of GETs cycling over ``paths`` for ``seconds``; every answer must be 200."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in paths:
            start = time.perf_counter()
            response = client.get(path)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200, (path, response.status_code)
        close_old_connections()
    return latencies


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def statuses(ids: list[str]) -> dict[str, str]:
    return {str(k): v for k, v in Job.objects.filter(pk__in=ids).values_list("pk", "status")}


@pytest.fixture
def nap_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "nap"
    folder.mkdir()
    (folder / "main.wdl").write_text(NAP_WDL)
    return folder


@pytest.fixture
def owner_workspace(users: dict[str, User]) -> Workspace:
    return workspace_create(user=users["owner"], name="Outage")


@pytest.fixture
def started_jobs(
    transactional_db: Any,
    client_for: Callable[[str], APIClient],
    owner_workspace: Workspace,
    server_record: dict[str, Any],  # noqa: F811
    nap_folder: Path,
) -> list[str]:
    nap = make_wdl_operation(nap_folder)
    scatter = make_wdl_operation(FIXTURES / "scatter")
    owner = client_for("owner")
    ids = []
    for operation in (nap, nap, scatter):
        response = owner.post(
            "/api/jobs/", job_body(operation, owner_workspace, executor=EXECUTOR), format="json"
        )
        assert response.status_code == 201, response.json()
        ids.append(str(response.json()["id"]))
    return ids


def test_a_cromwell_outage_fails_no_job_and_does_not_slow_the_api(
    settings: Any,
    client_for: Callable[[str], APIClient],
    owner_workspace: Workspace,
    cromwell: CromwellServer,  # noqa: F811
    site_bucket: str,  # noqa: F811
    moto_server: S3Server,
    started_jobs: list[str],
) -> None:
    settings.FERRY_RESUBMIT_AFTER_S = 1
    reader = client_for("owner")
    paths = [f"/api/jobs/?workspace={owner_workspace.pk}"] + [
        f"/api/jobs/{job_id}/" for job_id in started_jobs
    ]
    with Poller() as poller:
        wait_until(
            lambda: set(statuses(started_jobs[:2]).values()) == {JobStatus.RUNNING.value},
            FINISH_LIMIT_S,
            "the napping jobs to run",
        )
        before = measure(reader, paths, BASELINE_S)

        cycles_at_start = poller.cycles
        cromwell.faults(status_503_next=10**9)
        try:
            during = measure(reader, paths, STATUS_503_S)
            unavailable = cromwell.counters().get("_503", 0)
            cromwell.faults(status_503_next=0, down=True)
            during += measure(reader, paths, DOWN_S)
            dropped = cromwell.counters().get("_dropped", 0)
            outage_cycles = poller.cycles - cycles_at_start
            # Meanwhile every job kept its state, with a notice instead of a failure.
            noticed = Job.objects.filter(pk__in=started_jobs[:2]).values_list(
                "status", "executor_unreachable_since", "error_detail"
            )
            for status, since, detail in noticed:
                assert status == JobStatus.RUNNING.value, (status, detail)
                assert since is not None, detail
        finally:
            cromwell.faults(status_503_next=0, down=False)

        wait_until(
            lambda: all(JobStatus(s) in TERMINAL for s in statuses(started_jobs).values()),
            FINISH_LIMIT_S,
            "every job to end after the outage",
        )
    assert not poller.errors, poller.errors

    before_p50, before_p99 = p(before, 0.5), p(before, 0.99)
    during_p50, during_p99 = p(during, 0.5), p(during, 0.99)
    print(
        f"\nAPI GETs before the outage: n={len(before)} p50={before_p50 * 1000:.1f} ms "
        f"p99={before_p99 * 1000:.1f} ms mean={statistics.mean(before) * 1000:.1f} ms"
        f"\nduring ({STATUS_503_S + DOWN_S:.0f} s): n={len(during)} "
        f"p50={during_p50 * 1000:.1f} ms p99={during_p99 * 1000:.1f} ms "
        f"mean={statistics.mean(during) * 1000:.1f} ms"
        f"\nCromwell answered 503 {unavailable} times, dropped {dropped} requests; "
        f"{outage_cycles} poll cycles ran during the outage"
    )
    assert unavailable > 0
    assert dropped > 0
    assert outage_cycles >= 10
    assert during_p99 <= 2 * before_p99 + NOISE_FLOOR_S

    for job_id in started_jobs:
        job = Job.objects.get(pk=job_id)
        assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
        assert job.error_detail == ""
        assert job.attempts == 1
        assert len(workflows_labelled(cromwell, job.pk)) == 1
    assert [Job.objects.get(pk=i).outputs["slept"] for i in started_jobs[:2]] == [18, 18]
    assert_scatter_outputs(Job.objects.get(pk=started_jobs[2]), moto_server, site_bucket)
