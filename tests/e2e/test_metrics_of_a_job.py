"""A real job on the Docker engine, through HTTP, as /metrics and the staff's view of the job
tell it: relocated bytes and time, jobs by status, the executor up, the engine's last answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_echo_operation

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)


def test_a_finished_job_shows_in_metrics_and_in_its_executor_state(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_echo_operation()
    job = run_job(
        client_for("editor"),
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": {"text": "hello metrics"},
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    result = File.objects.get(pk=done.outputs["said"])

    response = Client().get("/metrics")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }
    assert samples[("ferry_relocation_bytes_total", ())] == result.size == len("hello metrics\n")
    assert samples[("ferry_relocation_seconds_count", ())] == 1
    assert samples[("ferry_relocation_seconds_sum", ())] > 0
    docker = (("executor", "local-docker"),)
    assert samples[("ferry_jobs", (*docker, ("status", "succeeded")))] == 1
    assert samples[("ferry_executor_up", docker)] == 1
    assert samples[("ferry_poll_seconds_count", docker)] >= 1

    state = client_for("staff").get(f"/api/jobs/{done.pk}/").json()["executor_state"]
    assert state["observed_state"] == "exited"
    assert state["last_polled_at"] is not None
