"""Finalizing a job (operations.runner.finalize_job) directly, for the outcomes that need no
engine: a job whose executor is no longer configured, and one that ran on the dummy executor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.models import User, Workspace
from executors import dummy
from executors.registry import get_executor
from operations.models import Event, Job
from operations.runner import finalize_job
from operations.states import JobStatus
from tests.operations_fixtures import make_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_dummy() -> Iterator[None]:
    dummy.reset()
    yield
    dummy.reset()


def _finalizing_job(users: dict[str, User], workspace: Workspace, **fields: Any) -> Job:
    return Job.objects.create(
        operation=make_operation("fin", "true"),
        workspace=workspace,
        owner=users["editor"],
        inputs={},
        run_spec={},
        status=JobStatus.FINALIZING,
        external_id="x",
        **fields,
    )


def test_a_job_whose_executor_is_gone_fails_with_a_reason(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = _finalizing_job(users, workspace, executor="removed-from-settings")

    finalize_job(str(job.pk))

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "removed-from-settings" in job.error_message
    assert Event.objects.filter(job=job, payload__to="failed").count() == 1


def test_a_dummy_run_is_finalized_with_its_values(
    users: dict[str, User], workspace: Workspace, clean_dummy: None
) -> None:
    job = _finalizing_job(users, workspace, executor="dummy")
    job.run_spec = {"dummy": {"polls": 0, "values": {}}}
    executor = get_executor("dummy")
    executor.submit(job)
    executor.poll([job])

    finalize_job(str(job.pk))

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
