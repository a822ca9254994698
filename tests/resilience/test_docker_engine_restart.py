"""The Docker engine restarted mid-run (a second dockerd on its own socket, so the host's engine
is untouched): no job is left non-terminal, each failed one says the engine restarted, one whose
operation is safe to retry runs again and succeeds, and while the engine is down the API says so
in a plain sentence (never an exception's repr)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from api.models import Workspace
from executors.docker import LABEL_JOB
from executors.registry import get_executor
from operations import runner
from operations.examples import ensure_base_image
from operations.models import Event, Job
from operations.states import TERMINAL, JobStatus
from tests.executors.test_executor_docker import StandInJob
from tests.harness.docker import DockerHarnessError
from tests.harness.second_docker import SecondDockerEngine
from tests.operations_fixtures import TEST_IMAGE, make_operation

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

RESTARTED = "The Docker engine restarted while the job ran (its container was stopped)"
NOTICE = re.compile(
    r"^The Docker engine is not answering \(since \d\d:\d\d UTC\); "
    r"the job will continue when it is back\.$"
)
SETTLE_S = 120  # measured: ~35 s from the engine's return to the last job's end


@pytest.fixture(scope="module")
def engine() -> Iterator[SecondDockerEngine]:
    try:
        with SecondDockerEngine() as second:
            client = second.client()
            try:
                ensure_base_image(client, tag=TEST_IMAGE)
            finally:
                client.close()
            yield second
    except DockerHarnessError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def on_second_engine(engine: SecondDockerEngine, settings: Any) -> SecondDockerEngine:
    """The local-docker executor runs its containers on the second engine."""
    local = django_settings.EXECUTORS["local-docker"]
    settings.EXECUTORS = {
        **django_settings.EXECUTORS,
        "local-docker": {**local, "OPTIONS": {**local["OPTIONS"], "base_url": engine.base_url}},
    }
    settings.FERRY_RESUBMIT_AFTER_S = 1
    settings.FERRY_ENGINE_RESTART_RETRIES = 2
    return engine


def create_job(client: APIClient, operation: Any, workspace: Workspace, capture: Any) -> str:
    with capture(execute=True):
        response = client.post(
            "/api/jobs/",
            {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}},
            format="json",
        )
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def status_of(job_id: str) -> str:
    return str(Job.objects.values_list("status", flat=True).get(pk=job_id))


def poll_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Drive the poll cycle until ``predicate`` holds; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        runner.poll_cycle()
        if predicate():
            return time.monotonic() - started
        time.sleep(0.3)
    states = dict(Job.objects.values_list("pk", "status"))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: {states}")


def test_engine_restart_mid_run(
    on_second_engine: SecondDockerEngine,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    engine = on_second_engine
    n_output = {"n": {"type": "integer", "description": "", "required": True}}
    # Killed with SIGKILL when the engine stops it (sh as PID 1 ignores SIGTERM): status 137.
    killed = make_operation("sleeps", "sleep 120; echo '{}' > outputs.json")
    # Ends on the engine's SIGTERM: status 143.
    stops = make_operation(
        "stops", "trap 'exit 143' TERM; sleep 120 & wait; echo '{}' >outputs.json"
    )
    # Safe to run again: long enough to be running when the engine stops it (~10 s).
    safe = make_operation("safe", """sleep 25; echo '{"n": 7}' > outputs.json""", outputs=n_output)
    safe.spec = {**safe.spec, "safe_to_retry": True}
    safe.save(update_fields=["spec"])
    quick = make_operation("quick", """echo '{"n": 1}' > outputs.json""", outputs=n_output)

    owner, staff = client_for("owner"), client_for("staff")
    capture = django_capture_on_commit_callbacks
    running = {
        name: create_job(owner, operation, workspace, capture)
        for name, operation in (
            ("killed", killed),
            ("stops", stops),
            ("safe", safe),
            ("spent", safe),  # safe too, but it has had all its attempts
        )
    }
    poll_until(
        lambda: all(status_of(j) == JobStatus.RUNNING for j in running.values()),
        60,
        "the jobs to run",
    )
    Job.objects.filter(pk=running["spent"]).update(attempts=1 + 2)

    engine.stop()
    # Down: the jobs keep their state and the API says why, plainly.
    queued = create_job(owner, quick, workspace, capture)
    runner.poll_cycle()
    for job_id in running.values():
        shown = owner.get(f"/api/jobs/{job_id}/").json()
        assert shown["status"] == "running"
        assert NOTICE.match(shown["executor_notice"]), shown["executor_notice"]
        detail = staff.get(f"/api/jobs/{job_id}/").json()["error_detail"]
        assert "The Docker engine is not answering." in detail
        assert "its socket does not exist" in detail
        assert not re.search(r"\w+Error\(|Connection aborted", detail), detail
    waiting = owner.get(f"/api/jobs/{queued}/").json()
    assert waiting["status"] == "queued"
    assert NOTICE.match(waiting["executor_notice"])

    engine.start()
    back = int(time.time())
    everything = [*running.values(), queued]
    settled_s = poll_until(
        lambda: all(JobStatus(status_of(j)) in TERMINAL for j in everything),
        SETTLE_S,
        "every job to end",
    )
    ends = Job.objects.filter(status=JobStatus.FAILED, pk__in=everything)
    failed_by = max(
        end.timestamp() - back for end in ends.values_list("finished_at", flat=True) if end
    )
    print(
        f"failed jobs ended within {failed_by:.1f} s, all within {settled_s:.1f} s of the restart"
    )

    for name in ("killed", "stops", "spent"):
        job = Job.objects.get(pk=running[name])
        assert job.status == JobStatus.FAILED, (name, job.error_message)
        assert job.error_message.startswith(RESTARTED), (name, job.error_message)
        assert "exited with status" not in job.error_message
        shown = owner.get(f"/api/jobs/{job.pk}/").json()
        assert shown["error_message"].startswith(RESTARTED)
        assert shown["executor_notice"] == ""

    retried = Job.objects.get(pk=running["safe"])
    assert retried.status == JobStatus.SUCCEEDED, (retried.error_message, retried.error_detail)
    assert retried.attempts == 2
    assert retried.outputs == {"n": 7}
    assert retried.error_detail == ""
    path = list(
        Event.objects.filter(job=retried).order_by("id").values_list("payload__to", flat=True)
    )
    assert path == [
        "queued", "submitted", "running", "finalizing",
        "queued", "submitted", "running", "finalizing", "succeeded",
    ]  # fmt: skip

    resumed = Job.objects.get(pk=queued)
    assert resumed.status == JobStatus.SUCCEEDED
    assert resumed.attempts == 1
    assert resumed.outputs == {"n": 1}

    # After the restart the engine created exactly one container: one per job that ran again
    # or for the first time; none for the failed ones.
    client = engine.client()
    try:
        created = client.events(
            since=back, until=int(time.time()) + 1, decode=True,
            filters={"type": "container", "event": "create"},
        )  # fmt: skip
        by_job = [event["Actor"]["Attributes"].get(LABEL_JOB) for event in created]
        assert sorted(by_job) == sorted([running["safe"], queued])
        assert not client.containers.list(all=True, filters={"label": LABEL_JOB})
    finally:
        client.close()


def test_exit_events_are_followed_again_after_the_engine_restarts(
    on_second_engine: SecondDockerEngine,
) -> None:
    """The Docker executor's event stream breaks with the engine; it reconnects by itself and
    still tells of the next run's exit (meanwhile its waits just time out: polling)."""
    executor = get_executor("local-docker")
    executor.wait_for_exits(0)  # following the second engine's events from now on
    on_second_engine.stop()
    began = time.monotonic()
    executor.wait_for_exits(0.5)  # the stream is down: the wait just times out (never raises)
    assert time.monotonic() - began < 5
    on_second_engine.start()
    job = StandInJob({"image": TEST_IMAGE, "command": "true"})
    executor.submit(job)
    seen: set[Any] = set()
    deadline = time.monotonic() + 60
    try:
        while job.id not in seen and time.monotonic() < deadline:
            seen |= executor.wait_for_exits(max(0.0, deadline - time.monotonic()))
        assert job.id in seen, "the exit after the restart was not told"
    finally:
        executor.cleanup(job)
        executor.stop_waiting()
