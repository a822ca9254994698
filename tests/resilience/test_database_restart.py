"""The database restarted under a running Ferry (gunicorn + the qcluster worker, as in
production): while it is down the API answers 503 in the one error shape (never a traceback
500) and /readyz says so; once it is back, the API and the worker recover by themselves.

The session's own cluster serves every other test, so this one starts a second private cluster
and runs its own gunicorn and worker on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.benchmarks.gunicorn_server import GunicornServer, gunicorn_server, session
from tests.e2e.test_worker_restart import kill_tree
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.harness.pgcluster import PgCluster, private_cluster
from tests.operations_fixtures import TEST_IMAGE

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

RECOVERY_LIMIT_S = 60.0  # measured: a few seconds
JOB_LIMIT_S = 90.0

SETUP = """
import json
from api import services
from api.models import User
from tests.operations_fixtures import make_operation
user = User.objects.create_user(email="owner@example.org", password="x-unused-x")
_, key = services.api_token_create(user=user, name="restart-test")
workspace = services.workspace_create(user=user, name="Restart")
operation = make_operation("say-hi", "echo hi")
nap = make_operation("nap", "sleep 8")
print("SETUP " + json.dumps({"key": key, "workspace": str(workspace.pk),
                              "operation": str(operation.pk), "nap": str(nap.pk)}))
"""


def ferry_env(pg: PgCluster, workdir: Path, **extra: str) -> dict[str, str]:
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": pg.url,
        "FERRY_TEST_STORAGE_ROOT": str(workdir / "storage"),
        "TMPDIR": str(workdir / "tmp"),
        "FERRY_Q_SYNC": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took until ``predicate()`` held."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def private_pg() -> Iterator[PgCluster]:
    with private_cluster() as pg:
        yield pg


class Ferry:
    def __init__(self, server: GunicornServer, setup: dict[str, str]) -> None:
        self.server = server
        self.http = session()
        self.http.headers["Authorization"] = f"Token {setup['key']}"
        self.workspace = setup["workspace"]
        self.operation = setup["operation"]
        self.nap = setup["nap"]

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.server.base_url + path, timeout=30)

    def create_job(self, operation: str = "") -> requests.Response:
        return self.http.post(
            self.server.base_url + "/api/jobs/",
            json={
                "operation": operation or self.operation,
                "workspace": self.workspace,
                "inputs": {},
            },
            timeout=30,
        )

    def job_status(self, job_id: str) -> str:
        response = self.get(f"/api/jobs/{job_id}/")
        return str(response.json()["status"]) if response.status_code == 200 else ""


def assert_database_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == "database_unavailable"
    assert "Traceback" not in response.text
    assert response.headers.get("Retry-After")


def test_api_and_worker_recover_from_a_database_restart(
    private_pg: PgCluster, tmp_path: Path
) -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    env = ferry_env(
        private_pg,
        tmp_path,
        FERRY_POLL_LOOP_S="20",
        FERRY_LEASE_TTL_S="3",
        FERRY_RESUBMIT_AFTER_S="2",
        FERRY_REFINALIZE_AFTER_S="5",
    )
    manage(env, "migrate", "--noinput")
    line = next(x for x in manage(env, "shell", "-c", SETUP).splitlines() if x.startswith("SETUP "))
    setup = json.loads(line.removeprefix("SETUP "))

    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=worker_log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web_env = {
        k: env[k]
        for k in ("DATABASE_URL", "FERRY_Q_SYNC", "FERRY_LEASE_TTL_S", "FERRY_TEST_STORAGE_ROOT")
    }
    try:
        with gunicorn_server(tmp_path / "web", workers=2, extra_env=web_env) as server:
            ferry = Ferry(server, setup)
            try:
                # Before: a job runs to the end.
                before = ferry.create_job()
                assert before.status_code == 201, before.text
                wait_for(
                    lambda: ferry.job_status(before.json()["id"]) == "succeeded",
                    JOB_LIMIT_S,
                    "a job to succeed before the restart",
                )
                worker_pids = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
                # One job runs (sleeps) across the restart.
                napping = ferry.create_job(ferry.nap)
                assert napping.status_code == 201, napping.text
                wait_for(
                    lambda: ferry.job_status(napping.json()["id"]) == "running",
                    JOB_LIMIT_S,
                    "the napping job to run",
                )

                private_pg.stop("fast")
                try:
                    ready = ferry.get("/readyz")
                    assert ready.status_code == 503, ready.text
                    # The error shape: the failing checks in details.
                    assert ready.json()["details"]["database"][0].startswith("unreachable")
                    for _ in range(4):  # both gunicorn workers, whatever their connection
                        assert_database_unavailable(ferry.get("/api/jobs/"))
                        assert_database_unavailable(ferry.get(f"/api/jobs/{before.json()['id']}/"))
                        assert_database_unavailable(ferry.create_job())
                    time.sleep(3)  # the worker meets the outage in its loops too
                finally:
                    private_pg.start()

                took = wait_for(
                    lambda: ferry.get("/readyz").status_code == 200,
                    RECOVERY_LIMIT_S,
                    "/readyz to answer 200 after the restart",
                )
                print(f"\n/readyz ready {took:.1f} s after the database came back")
                for _ in range(6):
                    listed = ferry.get("/api/jobs/")
                    assert listed.status_code == 200, listed.text

                # The same worker (never restarted by hand) runs a job created after it.
                after = ferry.create_job()
                assert after.status_code == 201, after.text
                took = wait_for(
                    lambda: ferry.job_status(after.json()["id"]) == "succeeded",
                    JOB_LIMIT_S,
                    "a job created after the restart to succeed",
                )
                print(f"job created after the restart succeeded in {took:.1f} s")
                assert worker.poll() is None, "the qcluster exited"
                alive = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
                print(f"worker processes replaced by django-q: {len(worker_pids - alive)}")
                assert ferry.job_status(before.json()["id"]) == "succeeded"
                took = wait_for(
                    lambda: ferry.job_status(napping.json()["id"]) == "succeeded",
                    JOB_LIMIT_S,
                    "the job running across the restart to succeed",
                )
            except AssertionError:
                print(server.log_tail(80))
                print(worker_log.read_text()[-15000:])
                raise
    finally:
        kill_tree(worker)


def test_outside_drf_a_database_outage_is_a_503_too() -> None:
    """Django's 500 handler (middleware, admin) answers a database error as the API does."""
    from django.db import OperationalError
    from django.test import RequestFactory

    from api.exception_handlers import json_500

    try:
        raise OperationalError("connection to server failed: Connection refused")
    except OperationalError:
        response = json_500(RequestFactory().get("/admin/"))
    assert response.status_code == 503
    assert response["Retry-After"]
    assert json.loads(response.content)["code"] == "database_unavailable"
