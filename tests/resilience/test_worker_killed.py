"""Worker killed (issue 11): a seeded mix of Docker, miniwdl and test-Cromwell jobs submitted
over HTTP while the whole qcluster process group is SIGKILLed at seeded random moments and
restarted each time. Afterwards every job ends as it should within a bound of the last
restart, ran once, left each result File once with its checksum, and nothing is left over."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django_q.conf import Conf
from rest_framework.test import APIClient

from api.models import User
from api.services import workspace_create
from operations.models import Event, Job
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

SEED = 20261206
KILLS = 3
ALL_DONE_AFTER_RESTART_S = 90.0  # measured 3-15 s (the jobs still had to run)
RESUMED_AFTER_RESTART_S = 30.0  # the goal is 10 s; measured 0.9-5.9 s


def first_move_after(job: Job, moment: datetime) -> datetime | None:
    return (
        Event.objects.filter(job=job, kind="job.status", created_at__gt=moment)
        .values_list("created_at", flat=True)
        .first()
    )


def test_worker_killed_at_random_moments_loses_and_duplicates_nothing(
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
    monkeypatch.setattr(Conf, "SYNC", False)  # the API enqueues for the worker subprocess
    rng = random.Random(SEED)
    plan = plan_mix(SEED, cromwell=True)
    workspace = workspace_create(user=users["owner"], name="Killed workers")
    client = client_for("owner")
    env = worker_env(storage_root, **worker_storage_env(moto_server, cromwell))
    worker = Cluster("worker", env, storage_root.parent / "worker.log")
    jobs: list[Job] = []
    waves = [plan[i :: KILLS + 1] for i in range(KILLS + 1)]
    with ContainerCreates() as creates, clusters(worker):
        jobs += [submit(client, workspace, planned) for planned in waves[0]]
        for kill in range(KILLS):
            time.sleep(rng.uniform(1.0, 4.0))
            worker.kill()
            # The API takes jobs while no worker runs: there is work waiting at each restart.
            jobs += [submit(client, workspace, planned) for planned in waves[kill + 1]]
            time.sleep(rng.uniform(0.0, 1.0))
            restarted_at = datetime.now(UTC)
            waiting = [
                job
                for job in jobs
                if statuses([job])[str(job.pk)] in (JobStatus.QUEUED, JobStatus.FINALIZING)
            ]
            worker.start()
        all_done = wait_for(
            lambda: all_terminal(jobs), ALL_DONE_AFTER_RESTART_S, "every job to end"
        )
        nothing_left(jobs, storage_root, workspace, moto_server)
    resumed = {
        str(job.pk): (moved - restarted_at).total_seconds()
        for job in waiting
        if (moved := first_move_after(job, restarted_at)) is not None
    }
    print(
        f"\nworker killed {KILLS}x: all {len(jobs)} jobs ended {all_done:.1f} s after the last "
        f"restart; jobs waiting "
        f"on the worker at the last restart moved after (s): {sorted(resumed.values())}"
    )
    assert waiting, "the last restart found no job waiting on the worker"
    assert len(resumed) == len(waiting), "a job waiting on the worker never moved"
    assert all(delay <= RESUMED_AFTER_RESTART_S for delay in resumed.values()), resumed
    check_outcome(jobs, [p for wave in waves for p in wave], creates, cromwell=cromwell)
