"""What the operator's view costs at scale: 10,000 active jobs (and 10,000 finished ones).

    FERRY_BENCH_JOBS=10000   active jobs (as many finished ones besides)

Printed, not asserted:
* a /metrics scrape (Ferry's collector: jobs by status and executor, the queue, executors) — p50
  of 20 scrapes;
* what one poll cycle adds per executor to record what the engine said of 10,000 jobs, when
  nothing changed (the steady state: no row written) and when every job changed;
* GET /api/executors/ as staff.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from api import services
from executors.base import Observation, RunState
from operations.models import Job
from operations.monitoring import record_observed, record_poll
from operations.states import JobStatus
from tests.conftest import make_user
from tests.operations_fixtures import make_echo_operation

JOBS = int(os.environ.get("FERRY_BENCH_JOBS", "10000"))


def _p50(action: Any, times: int = 20) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


@pytest.mark.django_db
def test_bench_metrics_at_scale() -> None:
    owner = make_user("bench@example.org")
    staff = make_user("staff-bench@example.org", is_staff=True)
    workspace = services.workspace_create(user=owner, name="bench")
    operation = make_echo_operation()
    now = timezone.now()
    rows = [
        Job(
            operation=operation,
            workspace=workspace,
            owner=owner,
            executor="local-docker",
            status=JobStatus.RUNNING if i < JOBS else JobStatus.SUCCEEDED,
            submitted_at=now,
        )
        for i in range(2 * JOBS)
    ]
    Job.objects.bulk_create(rows, batch_size=2000)
    Job.objects.bulk_create(
        [Job(operation=operation, workspace=workspace, owner=owner, status=JobStatus.QUEUED)] * 1,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE operations_job")
    active = list(Job.objects.filter(status=JobStatus.RUNNING).only("id", "observed_state"))
    said = {job.pk: Observation(RunState.RUNNING) for job in active}
    client = Client()
    assert client.get("/metrics").status_code == 200
    scrape_ms = _p50(lambda: client.get("/metrics"))
    first_ms = _p50(lambda: record_observed(active, said), times=1)
    steady_ms = _p50(lambda: record_observed(active, said), times=10)
    poll_ms = _p50(lambda: record_poll("local-docker", 0.01), times=20)
    staff_client = Client()
    staff_client.force_login(staff)
    executors_ms = _p50(lambda: staff_client.get("/api/executors/"))
    print(
        f"\n[metrics] {JOBS} active + {JOBS} finished jobs:\n"
        f"  /metrics scrape p50 {scrape_ms:.1f} ms\n"
        f"  record what the engine said of {JOBS} jobs: all changed {first_ms:.1f} ms, "
        f"none changed (steady) p50 {steady_ms:.1f} ms\n"
        f"  record one executor's poll (totals, health) p50 {poll_ms:.2f} ms\n"
        f"  GET /api/executors/ p50 {executors_ms:.1f} ms"
    )
