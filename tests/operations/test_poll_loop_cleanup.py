"""The poll loop hands the cleanup after a job it finalized (its container and work dir
removed, then Job.cleanup_pending cleared) to a thread of its process and goes on to the next
exit (issue 14, P1: under load a container's removal held up the next job's finalize); by the
time the loop ends every cleanup is done. A direct poll_cycle() still cleans up inline."""

from __future__ import annotations

import time

import docker
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import User, Workspace
from executors.registry import get_executor
from operations import runner
from operations.models import Job
from operations.services import build_run_spec
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

pytestmark = pytest.mark.django_db(transaction=True)

CLEARED = 'SET "cleanup_pending" = false'


@pytest.fixture(autouse=True)
def _engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


def _ended_job(workspace: Workspace, owner: User) -> Job:
    operation = make_operation("noop", "true")
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=owner,
        inputs={},
        executor="local-docker",
        run_spec=build_run_spec(operation, {}),
    )
    runner.submit_job(str(job.pk))
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = client.containers.list(all=True, filters={"label": f"ferry.job={job.pk}"})
            if found and found[0].status == "exited":
                return job
            time.sleep(0.1)
    finally:
        client.close()
    pytest.fail("the job's container did not exit")


def _container_left(job: Job) -> bool:
    client = docker.from_env()
    try:
        return bool(client.containers.list(all=True, filters={"label": f"ferry.job={job.pk}"}))
    finally:
        client.close()


def test_the_poll_loop_cleans_up_on_a_thread_and_is_done_when_it_ends(
    workspace: Workspace, users: dict[str, User]
) -> None:
    job = _ended_job(workspace, users["owner"])
    with CaptureQueriesContext(connection) as loop:
        runner.poll_active()  # one pass (FERRY_POLL_LOOP_S=0 in the test settings)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert not job.cleanup_pending
    assert not _container_left(job)
    workdir = get_executor("local-docker").workdir_for(job.pk)
    assert workdir is not None
    assert not workdir.exists()
    cleared = [q["sql"] for q in loop.captured_queries if CLEARED in str(q["sql"])]
    assert cleared == [], "the loop's own connection cleared it: cleaned up inline"


def test_a_direct_poll_cycle_still_cleans_up_inline(
    workspace: Workspace, users: dict[str, User]
) -> None:
    job = _ended_job(workspace, users["owner"])
    with CaptureQueriesContext(connection) as cycle:
        runner.poll_cycle()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert not job.cleanup_pending
    assert not _container_left(job)
    assert [q for q in cycle.captured_queries if CLEARED in str(q["sql"])]
