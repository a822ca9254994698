"""A worker killed with SIGKILL mid-job, then a new one started: the job finishes exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings
from django_q.tasks import async_task

from api import services
from api.models import File, User
from operations.models import Event, Job
from operations.services import build_run_spec
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start_worker(storage_root: Path, log: Path) -> subprocess.Popen[bytes]:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FERRY_TEST_STORAGE_ROOT": str(storage_root),
        "FERRY_Q_SYNC": "false",
        "FERRY_POLL_LOOP_S": "20",
        "FERRY_LEASE_TTL_S": "3",
        "FERRY_RESUBMIT_AFTER_S": "2",
        "FERRY_REFINALIZE_AFTER_S": "5",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(family, timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(job: Job) -> str:
    return str(Job.objects.values_list("status", flat=True).get(pk=job.pk))


def test_sigkill_mid_job_then_restart(
    transactional_db: Any, storage_root: Path, users: dict[str, User]
) -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    owner = users["owner"]
    workspace = services.workspace_create(user=owner, name="Restart")
    outputs_json = """'{"said": "said.txt"}'"""
    operation = make_operation(
        "slow-echo",
        f"sleep 8 && echo done > said.txt && echo {outputs_json} > outputs.json",
        outputs={"said": {"type": "file", "file_type": "text"}},
    )
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=owner,
        executor="local-docker",
        run_spec=build_run_spec(operation, {}),
    )
    log = storage_root.parent / "workers.log"
    first = start_worker(storage_root, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        async_task("operations.runner.submit_job", str(job.pk), sync=False)
        async_task("operations.runner.poll_active", sync=False)
        wait_for(lambda: status_of(job) == JobStatus.RUNNING, 40, "the job to run")
        kill_tree(first)  # SIGKILL the whole worker while the container runs
        time.sleep(3.5)  # let the dead worker's poll lease expire
        second = start_worker(storage_root, log)
        async_task("operations.runner.poll_active", sync=False)
        wait_for(
            lambda: status_of(job) == JobStatus.SUCCEEDED,
            60,
            "the job to succeed after the restart",
        )
    except AssertionError:
        print(log.read_text()[-20000:])
        raise
    finally:
        kill_tree(first)
        if second is not None:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_tree(second)
    job.refresh_from_db()
    assert job.attempts == 1
    moves = list(Event.objects.filter(job=job).values_list("payload__to", flat=True))
    assert moves == ["submitted", "running", "finalizing", "succeeded"]
    produced = File.objects.filter(produced_by=job)
    assert produced.count() == 1
    assert produced.get().size == len(b"done\n")
