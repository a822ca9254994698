"""A run that ended before the poll first saw it (issue 11, item 7): its job still goes
submitted → running → finalizing, and ``started_at`` is when the executor started it, not
when the lagging poll noticed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import User, Workspace
from executors.base import Observation, RunState
from executors.registry import get_executor
from operations import runner
from operations.models import Event, Job
from operations.services import build_run_spec
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

pytestmark = pytest.mark.django_db


def test_a_run_that_ended_before_the_first_poll_is_recorded_running_since_it_started(
    workspace: Workspace, users: dict[str, User]
) -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    operation = make_operation("nap", "sleep 1")
    job = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        executor="local-docker",
        run_spec=build_run_spec(operation, {}),
    )
    runner.submit_job(str(job.pk))
    executor = get_executor(job.executor)
    deadline = time.monotonic() + 60
    while executor.poll([job]).get(job.id, Observation(RunState.MISSING)).state != RunState.EXITED:
        assert time.monotonic() < deadline, "the container did not finish"
        time.sleep(0.1)
    ended_by = timezone.now()
    time.sleep(1.0)  # the poller lags

    runner.poll_cycle()

    job.refresh_from_db()
    moves = list(Event.objects.filter(job=job).values_list("payload__to", flat=True))
    assert moves == ["submitted", "running", "finalizing", "succeeded"]
    assert job.started_at is not None
    assert job.submitted_at is not None
    assert job.started_at <= ended_by - timedelta(seconds=0.5)  # not the poll's time
    assert job.started_at >= job.submitted_at
