"""Structured logs: one JSON object a line; the job's id on every line a worker logs while it
runs a task of that job, and on the line about a request for a job; each 4xx logged once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import User, Workspace
from config.logs import json_formatter
from operations import leases, queue
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation


def rendered(record: logging.LogRecord) -> dict[str, Any]:
    line = json_formatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


@pytest.fixture
def job(users: dict[str, User], workspace: Workspace) -> Job:
    return Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=users["owner"],
        status=JobStatus.FINALIZING,
        executor="local-docker",
    )


def test_a_worker_task_of_a_job_logs_its_id(job: Job, caplog: pytest.LogCaptureFixture) -> None:
    # Another live worker holds the job's finalize lease: the task (run inline, as a worker
    # runs it) logs that it leaves the job to that one.
    assert leases.acquire(f"finalize:{job.pk}", leases.new_holder())
    with caplog.at_level(logging.INFO, logger="operations.runner"):
        queue.enqueue_finalize(job.pk)
    lines = [rendered(r) for r in caplog.records if r.name == "operations.runner"]
    assert lines, caplog.text
    for line in lines:
        assert line["job_id"] == str(job.pk)
        assert line["task"] == "finalize_job"
        assert line["level"] == "info"
        assert line["logger"] == "operations.runner"
        assert "being finalized by another worker" in line["event"]
        assert line["timestamp"].endswith("Z")
    # Once the task is done, lines about nothing in particular carry no job id.
    logging.getLogger("operations.runner").warning("unrelated")
    assert "job_id" not in rendered(caplog.records[-1])


def test_a_4xx_about_a_job_is_logged_once_with_its_id(
    job: Job, client_for: Callable[[str], APIClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client_for("other").get(f"/api/jobs/{job.pk}/")
    assert response.status_code == 404
    about = [r for r in caplog.records if f"/api/jobs/{job.pk}/" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in caplog.records]
    line = rendered(about[0])
    assert line["job_id"] == str(job.pk)
    assert line["level"] == "warning"
    assert line["path"] == f"/api/jobs/{job.pk}/"
    assert line["method"] == "GET"


def test_a_4xx_elsewhere_is_logged_once_without_a_job_id(
    client_for: Callable[[str], APIClient], caplog: pytest.LogCaptureFixture, db: Any
) -> None:
    with caplog.at_level(logging.INFO):
        response = client_for("owner").post("/api/workspaces/", {"name": ""}, format="json")
    assert response.status_code == 400
    about = [r for r in caplog.records if "/api/workspaces/" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in caplog.records]
    line = rendered(about[0])
    assert "job_id" not in line
    assert line["path"] == "/api/workspaces/"
