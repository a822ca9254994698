"""While a poll loop runs, it submits the new jobs of the engines it waits on itself (issue 14,
P1): the job's creation wakes it with a notice, and no task goes through the queue (no queue
row, pusher, worker pickup or result per job). Without a loop, a task submits the job and a
loop is started, as before (the rest of the suite runs tasks inline: that path)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django_q.signals import pre_enqueue

from api.models import User, Workspace
from operations import runner, services
from operations.models import Job
from operations.services import build_run_spec
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


@pytest.fixture
def worker_settings(settings: Any) -> Any:
    """As a worker runs (tasks through the queue, not inline), the loop's deployed pace."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    settings.FERRY_POLL_LOOP_S = 90.0
    settings.FERRY_POLL_INTERVAL_S = 30.0  # a loop that only polled would take half a minute
    return settings


def _wait_until(check: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {limit} s")


def _loop_in_a_thread() -> tuple[threading.Thread, dict[str, str]]:
    ended: dict[str, str] = {}

    def loop() -> None:
        try:
            ended["result"] = runner.poll_active()
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="poll loop")
    thread.start()
    return thread, ended


@pytest.fixture
def tasks_enqueued() -> Any:
    """The names of the tasks enqueued meanwhile (inline or through the queue)."""
    names: list[str] = []

    def seen(sender: Any, task: dict[str, Any], **_: Any) -> None:
        names.append(str(task.get("name")))

    pre_enqueue.connect(seen, dispatch_uid="test_loop_submits")
    try:
        yield names
    finally:
        pre_enqueue.disconnect(dispatch_uid="test_loop_submits")


def test_a_job_created_while_the_poll_loop_runs_is_submitted_by_the_loop(
    worker_settings: Any,
    workspace: Workspace,
    users: dict[str, User],
    tasks_enqueued: list[str],
) -> None:
    owner = users["owner"]
    # A job queued before the loop started (its task lost, say): the loop takes it at its
    # first pass, and it keeps the loop going meanwhile.
    nap = make_operation("nap", "sleep 4")
    keeps_going = Job.objects.create(
        operation=nap,
        workspace=workspace,
        owner=owner,
        inputs={},
        executor="local-docker",
        run_spec=build_run_spec(nap, {}),
    )
    thread, ended = _loop_in_a_thread()
    try:
        _wait_until(
            lambda: Job.objects.get(pk=keeps_going.pk).status != JobStatus.QUEUED,
            30,
            "the first job's submit",
        )
        started = time.monotonic()
        job = services.job_create(
            user=owner,
            operation=make_operation("noop", "true"),
            workspace_id=workspace.pk,
            inputs={},
        )
        _wait_until(
            lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 30, "the job's run"
        )
        assert time.monotonic() - started < 20  # woken by the notice, not its 30 s pace
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert ended["result"] == "0 active job(s)"
        assert Job.objects.get(pk=keeps_going.pk).status == JobStatus.SUCCEEDED
        assert tasks_enqueued == []  # neither job went through the task queue
    finally:
        thread.join(timeout=60)
