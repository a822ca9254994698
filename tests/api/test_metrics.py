"""/metrics, /readyz and the operator's view of executors and jobs (GET /api/executors/, a job's
executor_state for staff), with real parts: Postgres, the Docker engine (or an address where
none answers), the worker's heartbeat written as a worker writes it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from api.models import User, Workspace
from executors.base import Observation, RunState
from operations.models import CromwellServer, Job, Operation, WorkerHeartbeat
from operations.monitoring import beat, heartbeat_loop
from operations.runner import poll_cycle
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

NO_ENGINE = "tcp://127.0.0.1:1"  # nothing listens there


def scrape(
    client: Client | None = None, **headers: Any
) -> dict[tuple[str, tuple[Any, ...]], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def make_job(users: dict[str, User], workspace: Workspace, status: str, **fields: Any) -> Job:
    operation = Operation.objects.filter(name="echo").first() or make_echo_operation()
    return Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=users["owner"],
        status=status,
        **fields,
    )


def docker_nowhere(settings: Any) -> None:
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "local-docker": {
            **settings.EXECUTORS["local-docker"],
            "OPTIONS": {**settings.EXECUTORS["local-docker"]["OPTIONS"], "base_url": NO_ENGINE},
        },
    }


def test_scrape_counts_jobs_by_status_and_executor_and_the_queue(
    users: dict[str, User], workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    for status, executor, n in (
        (JobStatus.QUEUED, "local-docker", 3),
        (JobStatus.RUNNING, "local-docker", 2),
        (JobStatus.RUNNING, "local-miniwdl", 1),
        (JobStatus.SUCCEEDED, "local-docker", 4),
        (JobStatus.FAILED, "local-miniwdl", 1),
    ):
        for _ in range(n):
            make_job(users, workspace, status, executor=executor)
    oldest = Job.objects.filter(status=JobStatus.QUEUED).order_by("created_at").first()
    assert oldest is not None
    Job.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(seconds=600))

    with django_assert_max_num_queries(5):  # whatever the number of jobs
        samples = scrape()

    def jobs(status: str, executor: str) -> float:
        return samples[("ferry_jobs", (("executor", executor), ("status", status)))]

    assert jobs("queued", "local-docker") == 3
    assert jobs("running", "local-docker") == 2
    assert jobs("running", "local-miniwdl") == 1
    assert jobs("succeeded", "local-docker") == 4
    assert jobs("failed", "local-miniwdl") == 1
    assert jobs("cancelled", "") == 0  # every status is there, at 0 when no job has it
    assert samples[("ferry_queue_depth", ())] == 3
    assert 600 <= samples[("ferry_queue_oldest_age_seconds", ())] < 3600
    assert samples[("ferry_worker_heartbeat_age_seconds", ())] == -1  # no worker ever
    # django-prometheus' own metrics are there too
    assert any(name.startswith("django_http_requests") for name, _ in samples)


def test_scrape_shows_a_failed_poll_and_the_executors_list_names_it(
    settings: Any,
    users: dict[str, User],
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    docker_nowhere(settings)
    job = make_job(users, workspace, JobStatus.SUBMITTED, executor="local-docker")
    poll_cycle()
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED  # it keeps its state while the engine is away

    samples = scrape()
    assert samples[("ferry_executor_errors_total", (("executor", "local-docker"),))] == 1
    assert samples[("ferry_executor_up", (("executor", "local-docker"),))] == 0
    assert samples[("ferry_poll_seconds_count", (("executor", "local-docker"),))] == 1

    listed = client_for("staff").get("/api/executors/")
    assert listed.status_code == 200
    by_alias = {e["alias"]: e for e in listed.json()}
    docker = by_alias["local-docker"]
    assert docker["healthy"] is False
    assert docker["active_jobs"] == 1
    assert "Docker engine" in docker["last_error"]
    assert docker["last_polled_at"] is not None
    assert by_alias["local-miniwdl"]["healthy"] is None  # never polled
    assert by_alias["local-miniwdl"]["active_jobs"] == 0
    for role in ("owner", "editor", "viewer", "other"):
        assert client_for(role).get("/api/executors/").status_code == 403
    assert client_for("anonymous").get("/api/executors/").status_code == 401

    staff_view = client_for("staff").get(f"/api/jobs/{job.pk}/").json()["executor_state"]
    assert "Docker engine" in staff_view["last_error"]
    assert staff_view["last_polled_at"] is not None
    assert staff_view["queue_position"] is None
    assert client_for("owner").get(f"/api/jobs/{job.pk}/").json()["executor_state"] is None


def test_staff_see_a_queued_jobs_position(
    users: dict[str, User], workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    first = make_job(users, workspace, JobStatus.QUEUED, executor="local-docker")
    second = make_job(users, workspace, JobStatus.QUEUED, executor="local-docker")
    Job.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=5))
    staff = client_for("staff")
    assert staff.get(f"/api/jobs/{first.pk}/").json()["executor_state"]["queue_position"] == 1
    assert staff.get(f"/api/jobs/{second.pk}/").json()["executor_state"]["queue_position"] == 2
    listed = staff.get("/api/jobs/").json()["results"]
    assert all(row["executor_state"] is None for row in listed)  # no queries per row


@pytest.mark.parametrize(
    ("networks", "headers", "expected"),
    [
        (["10.0.0.0/8"], {}, 403),  # the test client's 127.0.0.1 isn't in it
        (["10.0.0.0/8"], {"Authorization": "Bearer wrong-token"}, 403),
        (["10.0.0.0/8"], {"Authorization": "Bearer s3cret-scrape-token"}, 200),
        (["127.0.0.0/8"], {}, 200),
        ([], {"Authorization": "s3cret-scrape-token"}, 403),  # not as a bearer
    ],
)
def test_metrics_only_for_the_allowed_networks_or_the_token(
    settings: Any, db: Any, networks: list[str], headers: dict[str, str], expected: int
) -> None:
    settings.FERRY_METRICS_NETWORKS = networks
    settings.FERRY_METRICS_TOKEN = "s3cret-scrape-token"
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == expected
    if expected == 403:
        body = response.json()
        assert body["code"] == "permission_denied"
        assert "FERRY_METRICS_NETWORKS" in body["message"]


def test_no_token_configured_means_no_token_is_accepted(settings: Any, db: Any) -> None:
    settings.FERRY_METRICS_NETWORKS = []
    settings.FERRY_METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_readyz_with_a_live_worker_and_the_docker_engine() -> None:
    stop = threading.Event()
    stop.set()  # one beat, as a worker process's heartbeat thread writes it, then return
    thread = threading.Thread(target=heartbeat_loop, args=(stop, "host:123:456"))
    thread.start()
    thread.join(timeout=30)
    assert WorkerHeartbeat.objects.filter(holder="host:123:456").exists()
    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["worker"] == "ok"
    assert ready.json()["checks"]["executor:local-docker"] == "ok"


def test_readyz_fails_with_a_stale_worker_heartbeat(settings: Any, db: Any) -> None:
    assert Client().get("/readyz").json()["details"]["worker"] == ["no worker has ever reported"]
    beat("host:1:2")
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=600))
    settings.FERRY_WORKER_STALE_S = 60
    down = Client().get("/readyz")
    assert down.status_code == 503
    body = down.json()
    assert body["code"] == "not_ready"
    assert set(body["details"]) == {"worker"}
    assert body["details"]["worker"][0].startswith("stale: the newest worker heartbeat is 6")
    assert "worker: stale" in body["message"]


def test_readyz_fails_with_the_docker_engine_unreachable(settings: Any, db: Any) -> None:
    beat("host:1:2")
    docker_nowhere(settings)
    down = Client().get("/readyz")
    assert down.status_code == 503
    details = down.json()["details"]
    assert set(details) == {"executor:local-docker"}
    assert "Docker engine" in details["executor:local-docker"][0]


def test_readyz_reports_each_cromwell_server_without_failing_on_one(
    db: Any, cromwell_sim: Any
) -> None:
    beat("host:1:2")
    CromwellServer.objects.create(name="far", url="http://127.0.0.1:1")
    CromwellServer.objects.create(name="near", url=cromwell_sim.url)
    ready = Client().get("/readyz")
    assert ready.status_code == 200  # a dead remote engine holds up only its own jobs
    reports = ready.json()["reports"]
    assert reports["cromwell:near"] == "ok"
    assert reports["cromwell:far"].startswith("unhealthy")
    assert "127.0.0.1:1" in reports["cromwell:far"]


def test_a_poll_records_what_the_engine_said_only_when_it_changes(
    users: dict[str, User], workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    from operations.monitoring import record_observed

    job = make_job(users, workspace, JobStatus.RUNNING, executor="local-docker")
    record_observed([job], {job.pk: Observation(RunState.RUNNING)})
    job.refresh_from_db()
    assert job.observed_state == "running"
    first = job.observed_at
    assert first is not None
    record_observed([job], {job.pk: Observation(RunState.RUNNING)})  # unchanged: not written
    job.refresh_from_db()
    assert job.observed_at == first
    record_observed([job], {job.pk: Observation(RunState.EXITED)})
    state = client_for("staff").get(f"/api/jobs/{job.pk}/").json()["executor_state"]
    assert state["observed_state"] == "exited"
    assert state["observed_at"] is not None


def test_a_real_poll_records_the_engine_answer(
    users: dict[str, User], workspace: Workspace
) -> None:
    # A job the Docker engine has no container for: the engine answers "missing".
    job = make_job(users, workspace, JobStatus.SUBMITTED, executor="local-docker")
    poll_cycle()
    job.refresh_from_db()
    assert job.observed_state == "missing"
    assert job.status == JobStatus.FAILED
    samples = scrape()
    assert samples[("ferry_executor_up", (("executor", "local-docker"),))] == 1
    assert samples[("ferry_executor_errors_total", (("executor", "local-docker"),))] == 0


def test_behind_a_proxy_the_forwarded_client_address_counts(settings: Any, db: Any) -> None:
    # deploy/'s nginx connects from 127.0.0.1 and appends the client to X-Forwarded-For.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.FERRY_METRICS_NETWORKS = ["127.0.0.0/8"]
    outside = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert outside.get("/metrics").status_code == 403
    local = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert local.get("/metrics").status_code == 200
