"""Jobs react to their runs' exits (issue 14): the poll loop wakes on the Docker engine's
events instead of sleeping out its interval, a small result is finalized in the pass that saw
the exit (no finalize task), a large one still by a task, and a submit creates and starts the
container without looking anything up first."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from django_q.models import Task

from api.models import User, Workspace
from executors.docker import DockerExecutor
from operations import runner
from operations.models import Job
from operations.services import build_run_spec
from operations.states import JobStatus
from tests.executors.test_executor_docker import StandInJob
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.harness.docker_proxy import CountingProxy
from tests.operations_fixtures import TEST_IMAGE, make_echo_operation, make_operation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


def _job(operation: Any, workspace: Workspace, owner: User, inputs: dict[str, Any]) -> Job:
    return Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=owner,
        inputs=inputs,
        executor="local-docker",
        run_spec=build_run_spec(operation, inputs),
    )


def _finalize_tasks(job: Job) -> int:
    return Task.objects.filter(name=f"finalize-{job.pk}").count()


def test_the_poll_loop_wakes_when_a_run_exits_not_at_its_next_interval(
    workspace: Workspace, users: dict[str, User], settings: Any
) -> None:
    settings.FERRY_POLL_LOOP_S = 120.0
    settings.FERRY_POLL_INTERVAL_S = 60.0  # sleeping it out would take a minute
    job = _job(make_operation("nap", "sleep 2"), workspace, users["owner"], {})
    runner.submit_job(str(job.pk))

    began = time.monotonic()
    assert runner.poll_active() == "0 active job(s)"
    took = time.monotonic() - began

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert took < 30, f"the loop took {took:.1f} s: it slept instead of waking on the exit"
    assert _finalize_tasks(job) == 0  # finalized in the loop's own pass


def test_a_small_result_is_stored_in_the_pass_that_sees_the_exit(
    workspace: Workspace, users: dict[str, User]
) -> None:
    job = _job(make_echo_operation(), workspace, users["owner"], {"text": "hello"})
    runner.submit_job(str(job.pk))
    _wait_until_exited(job)

    runner.poll_cycle()

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert set(job.outputs) == {"said"}
    assert _finalize_tasks(job) == 0


def test_a_large_result_is_left_to_a_finalize_task(
    workspace: Workspace, users: dict[str, User], settings: Any
) -> None:
    settings.FERRY_INLINE_FINALIZE_BYTES = 3  # "hello\n" is more
    job = _job(make_echo_operation(), workspace, users["owner"], {"text": "hello"})
    runner.submit_job(str(job.pk))
    _wait_until_exited(job)

    runner.poll_cycle()  # (tests run tasks inline: the task finalizes it at once)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert _finalize_tasks(job) == 1


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


# ------------------------------------------------------------------ engine requests on submit


def test_a_submit_creates_and_starts_the_container_and_asks_nothing_else(
    tmp_path: Path,
) -> None:
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("the engine is not on /var/run/docker.sock")
    with CountingProxy(tmp_path) as proxy:
        executor = DockerExecutor(
            "test-submit-requests",
            {
                "work_root": str(tmp_path / "work"),
                "base_url": f"unix://{proxy.path}",
                "defaults": {"memory_mb": 256, "cpus": 1.0, "pids": 64, "timeout_s": 60},
            },
        )
        job = StandInJob({"image": TEST_IMAGE, "command": "true"})
        try:
            executor.ping()  # the client is set up (it asks the engine's version)
            proxy.requests.clear()
            first = executor.submit(job)
            asked = [line.split("?")[0] for line in proxy.requests]
            assert [re.sub(r"/v[0-9.]+/", "/", line) for line in asked] == [
                "POST /containers/create",
                f"POST /containers/{first}/start",
            ], asked
            assert executor.submit(job) == first  # the second: the name is taken (409)
        finally:
            executor.cleanup(job)
            executor.stop_waiting()
