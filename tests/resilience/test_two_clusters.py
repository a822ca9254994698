"""Two worker clusters on one database, as on two machines (issue 11): they share the work
without doing anything twice (no job submitted, transitioned or its results relocated twice),
and when one is killed the other finishes everything, taking over its leases once they lapse
(the clusters name different hosts, so neither can see the other's processes)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django_q.conf import Conf
from rest_framework.test import APIClient

from api.models import User
from api.services import workspace_create
from api.storage.spool import spool_sweep
from operations.models import Job
from operations.states import JobStatus
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401 (fixtures)
    cromwell,
    server_record,
    site_bucket,
    var_dir,
)
from tests.harness.buckets import S3Server
from tests.harness.cromwell import CromwellServer
from tests.harness.docker import ensure_busybox_image, ensure_docker, ensure_swarm
from tests.operations_fixtures import TEST_IMAGE
from tests.resilience.jobmix import (
    ContainerCreates,
    all_terminal,
    check_outcome,
    nothing_left,
    plan_mix,
    statuses,
    submit,
    worker_storage_env,
)
from tests.resilience.procs import Cluster, clusters, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = 11
# Leases pass between machines when they lapse: a short TTL keeps the test short.
TIMINGS = {
    "FERRY_LEASE_TTL_S": "5",
    "FERRY_RESUBMIT_AFTER_S": "5",
    "FERRY_REFINALIZE_AFTER_S": "5",
}
ALL_DONE_AFTER_KILL_S = 120.0  # measured 5.5-8.3 s


def test_two_clusters_share_the_work_and_one_finishes_what_the_killed_one_left(
    storage_root: Path,
    users: dict[str, User],
    client_for: Callable[[str], APIClient],
    server_record: dict[str, Any],  # noqa: F811
    cromwell: CromwellServer,  # noqa: F811
    site_bucket: str,  # noqa: F811
    var_dir: Path,  # noqa: F811
    moto_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    ensure_swarm()
    monkeypatch.setattr(Conf, "SYNC", False)  # the API enqueues for the worker subprocesses
    rng = random.Random(SEED)
    plan = plan_mix(SEED, cromwell=True, docker_copies=2)
    workspace = workspace_create(user=users["owner"], name="Two clusters")
    client = client_for("owner")
    storage_env = worker_storage_env(moto_server, cromwell)
    logs = storage_root.parent
    machine_a = Cluster(
        "machine-a",
        worker_env(storage_root, FERRY_WORKER_HOST="machine-a", **TIMINGS, **storage_env),
        logs / "machine-a.log",
    )
    machine_b = Cluster(
        "machine-b",
        worker_env(storage_root, FERRY_WORKER_HOST="machine-b", **TIMINGS, **storage_env),
        logs / "machine-b.log",
    )
    half = len(plan) // 2
    with ContainerCreates() as creates, clusters(machine_a, machine_b):
        jobs = [submit(client, workspace, planned) for planned in plan[:half]]
        wait_for(
            lambda: (
                "processing submit-" in machine_b.log.read_text(errors="replace")
                or "processing finalize-" in machine_b.log.read_text(errors="replace")
            ),
            60,
            "machine-b to take a job's work",
        )
        time.sleep(rng.uniform(0.5, 2.0))
        machine_b.kill()
        killed = time.monotonic()
        active_at_kill = sum(
            JobStatus(s) not in (JobStatus.SUCCEEDED, JobStatus.FAILED)
            for s in statuses(jobs).values()
        )
        jobs += [submit(client, workspace, planned) for planned in plan[half:]]
        all_done = wait_for(
            lambda: all_terminal(jobs), ALL_DONE_AFTER_KILL_S, "machine-a to finish every job"
        )
        print(
            f"\ntwo clusters, one killed with {active_at_kill} job(s) active: all {len(jobs)} "
            f"jobs ended {all_done:.1f} s after the kill ({time.monotonic() - killed:.1f} s)"
        )
        # The killed machine's spool goes with the next sweep (the survivor's schedule, every 10
        # minutes, or a worker starting again on that host): run that sweep now, don't wait.
        with override_settings(FILE_UPLOAD_TEMP_DIR=str(storage_root / ".incoming")):
            spool_sweep()
        nothing_left(jobs, storage_root, workspace, moto_server)
    check_outcome(jobs, plan, creates, cromwell=cromwell)
    assert Job.objects.filter(workspace=workspace).count() == len(plan)
