"""No request asks an executor about a job: the lists, a job's detail, the staff's executor
overview and a cancel answer from the database (the cancel enqueues the worker's task), so the
Cromwell test server counts no request from them; the worker's poll cycle is what asks it.
(The live logs of a running job, ``GET /api/jobs/{id}/logs/``, are read from the engine on
purpose and are left out.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api import services
from operations.cromwell_servers import server_create
from operations.models import Job
from operations.runner import poll_cycle
from operations.states import JobStatus
from tests.conftest import make_user

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    cromwell_sim.settings(sim_start_s=0.0, sim_run_s=3600.0, sim_fail_fraction=0.0)
    yield cromwell_sim
    cromwell_sim.reset(workflows=True)


def cromwell_requests(sim: CromwellServer) -> int:
    return int(sim.counters().get("_total", 0))


def test_job_requests_never_ask_the_executor(sim: CromwellServer, settings: Any) -> None:
    settings.FERRY_POLL_NEW_S = 0.0
    owner = make_user("asks@example.org")
    staff = make_user("staff-asks@example.org", is_staff=True)
    workspace = services.workspace_create(user=owner, name="Asked")
    server = server_create(name=f"asked-{uuid.uuid4().hex[:6]}", url=sim.url)
    (workflow_id,) = sim.simulate_bulk(1, status="Running")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(
        id=uuid.UUID(workflow_id),
        workspace=workspace,
        owner=owner,
        status=JobStatus.RUNNING,
        executor=server.executor_alias,
        external_id=workflow_id,
        submitted_at=an_hour_ago,
        started_at=an_hour_ago,
    )
    as_owner, as_staff = APIClient(), APIClient()
    as_owner.force_authenticate(owner)
    as_staff.force_authenticate(staff)
    before = cromwell_requests(sim)
    answers = [
        as_owner.get("/api/jobs/"),
        as_owner.get(f"/api/jobs/?workspace={workspace.pk}"),
        as_owner.get(f"/api/jobs/{job.pk}/"),
        as_staff.get(f"/api/jobs/{job.pk}/"),
        as_staff.get("/api/executors/"),
        as_owner.post(f"/api/jobs/{job.pk}/cancel/"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 202]
    assert cromwell_requests(sim) == before, "a request asked Cromwell"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLING
    poll_cycle()  # the worker is what asks
    assert cromwell_requests(sim) > before
