"""Mixed load on Ferry as in production: gunicorn (4 sync workers) and one django-q2 cluster on
PostgreSQL, 20-50 client threads for 60 s (lists, details, small uploads, job creates, status
polls, cancels); then the same again with the worker killed (SIGKILL of its whole process group)
and restarted once in the middle. Every answer must be the expected one (no error), and every
write a client was told about must be in the database afterwards (no lost write); every job
created must end. Prints p50/p99 per endpoint.

Knobs: FERRY_BENCH_LOAD_CLIENTS (default 24), FERRY_BENCH_LOAD_S (default 60),
FERRY_BENCH_LOAD_SEEDED_JOBS (jobs already in the listed workspace, default 500).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from django.db.models import Count

from api import services
from api.models import File, FileStatus, FileType, User, Workspace
from operations.models import Job, Operation
from operations.states import TERMINAL, JobStatus
from tests.benchmarks.gunicorn_server import database_url, gunicorn_server, session
from tests.benchmarks.reporting import env_number, percentile, show
from tests.benchmarks.test_bench_jobs import qcluster
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_operation

GUNICORN_WORKERS = 4
END_LIMIT_S = 300.0
SERIAL_S = 15.0


def clients() -> int:
    return int(env_number("FERRY_BENCH_LOAD_CLIENTS", 24))


def duration() -> float:
    return env_number("FERRY_BENCH_LOAD_S", 60)


def seeded_jobs() -> int:
    return int(env_number("FERRY_BENCH_LOAD_SEEDED_JOBS", 500))


@dataclass
class Setup:
    key: str
    workspace: Workspace  # where the clients write
    big: Workspace  # a workspace with many finished jobs and their files
    operation: Operation
    seeded_job: str
    seeded_file: str


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One simulated user: a seeded mix of requests; records latency per endpoint."""

    def __init__(self, base_url: str, setup: Setup, tally: Tally, seed: int) -> None:
        self.base = base_url
        self.setup = setup
        self.tally = tally
        self.rng = random.Random(seed)
        self.http = session()
        self.http.headers["Authorization"] = f"Token {setup.key}"
        self.mine: list[str] = []  # jobs this client created

    def call(
        self, endpoint: str, method: str, path: str, expect: tuple[int, ...], **kwargs: Any
    ) -> requests.Response | None:
        start = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, timeout=60, **kwargs)
        except requests.RequestException as exc:
            with self.tally.lock:
                self.tally.errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        with self.tally.lock:
            self.tally.latencies[endpoint].append(elapsed)
            if response.status_code not in expect:
                self.tally.errors.append(
                    f"{endpoint}: {response.status_code} {response.text[:200]}"
                )
                return None
        return response

    def step(self) -> None:
        s, roll = self.setup, self.rng.random()
        if roll < 0.16:
            self.call(
                "GET jobs list (client workspace)",
                "GET",
                f"/api/jobs/?workspace={s.workspace.pk}",
                (200,),
            )
        elif roll < 0.26:
            self.call(
                "GET jobs list (500-job workspace)",
                "GET",
                f"/api/jobs/?workspace={s.big.pk}",
                (200,),
            )
        elif roll < 0.30:
            self.call(
                "GET jobs list (500-job ws, page_size=500)",
                "GET",
                f"/api/jobs/?workspace={s.big.pk}&page_size=500",
                (200,),
            )
        elif roll < 0.42:
            self.call("GET files list", "GET", f"/api/files/?workspace={s.big.pk}", (200,))
        elif roll < 0.50:
            self.call("GET workspaces list", "GET", "/api/workspaces/", (200,))
        elif roll < 0.58:
            self.call("GET job detail", "GET", f"/api/jobs/{s.seeded_job}/", (200,))
        elif roll < 0.64:
            self.call("GET file detail", "GET", f"/api/files/{s.seeded_file}/", (200,))
        elif roll < 0.76:
            size = self.rng.randint(16, 4096)
            response = self.call(
                "PUT small upload",
                "PUT",
                f"/api/files/upload/?workspace={s.workspace.pk}&name=u-{uuid.uuid4().hex[:8]}.bin",
                (201,),
                data=self.rng.randbytes(size),
                headers={"Content-Type": "application/octet-stream"},
            )
            if response is not None:
                with self.tally.lock:
                    self.tally.uploads.append(str(response.json()["id"]))
        elif roll < 0.82:
            response = self.call(
                "POST job create",
                "POST",
                "/api/jobs/",
                (201,),
                json={
                    "operation": str(s.operation.pk),
                    "workspace": str(s.workspace.pk),
                    "inputs": {},
                },
            )
            if response is not None:
                job_id = str(response.json()["id"])
                self.mine.append(job_id)
                with self.tally.lock:
                    self.tally.jobs.append(job_id)
        elif roll < 0.96:
            if self.mine:
                job_id = self.rng.choice(self.mine[-5:])
                self.call("GET job status poll", "GET", f"/api/jobs/{job_id}/", (200,))
        elif self.mine:
            job_id = self.mine[-1]
            response = self.call(
                "POST job cancel", "POST", f"/api/jobs/{job_id}/cancel/", (202, 409)
            )
            if response is not None and response.status_code == 202:
                with self.tally.lock:
                    self.tally.cancelled.append(job_id)


def run_load(
    base_url: str,
    setup: Setup,
    seconds: float,
    during: Callable[[float], None],
    n_clients: int | None = None,
) -> Tally:
    """``n_clients`` (default ``clients()``) threads for ``seconds``; ``during(elapsed)`` is
    called about every 0.2 s."""
    tally = Tally()
    stop = threading.Event()

    def loop(seed: int) -> None:
        client = Client(base_url, setup, tally, seed)
        while not stop.is_set():
            client.step()
        client.http.close()

    threads = [
        threading.Thread(target=loop, args=(seed,)) for seed in range(n_clients or clients())
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            during(elapsed)
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    return tally


def report(title: str, tally: Tally, seconds: float, n_clients: int | None = None) -> None:
    rows = []
    total = 0
    for endpoint in sorted(tally.latencies):
        values = sorted(tally.latencies[endpoint])
        total += len(values)
        rows.append(
            [
                endpoint,
                len(values),
                f"{percentile(values, 0.5) * 1000:.0f}",
                f"{percentile(values, 0.99) * 1000:.0f}",
                f"{values[-1] * 1000:.0f}",
            ]
        )
    show(
        f"{title}: {n_clients or clients()} clients, {seconds:.0f} s, {total} requests "
        f"({total / seconds:.0f}/s), {len(tally.errors)} errors",
        ["endpoint", "n", "p50 ms", "p99 ms", "max ms"],
        rows,
    )


def verify_writes(tally: Tally) -> None:
    """Every upload and job a client was answered about is in the database, once; every job
    created ends (the worker finishes or cancels it); no job the clients didn't create."""
    assert not tally.errors, tally.errors[:20]
    ready = File.objects.filter(pk__in=tally.uploads, status=FileStatus.READY).count()
    assert ready == len(tally.uploads) == len(set(tally.uploads))
    assert Job.objects.filter(pk__in=tally.jobs).count() == len(tally.jobs) == len(set(tally.jobs))
    deadline = time.monotonic() + END_LIMIT_S
    while (
        Job.objects.filter(pk__in=tally.jobs)
        .exclude(status__in=[s.value for s in TERMINAL])
        .exists()
    ):
        assert time.monotonic() < deadline, "jobs still not ended: " + str(
            list(
                Job.objects.filter(pk__in=tally.jobs)
                .exclude(status__in=[s.value for s in TERMINAL])
                .values_list("pk", "status")[:10]
            )
        )
        time.sleep(1)
    ends = dict(
        Job.objects.filter(pk__in=tally.jobs)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    print(
        f"jobs created: {len(tally.jobs)}, cancelled: {len(tally.cancelled)}, ended as {ends}; uploads: {len(tally.uploads)}"
    )
    cancelled_ok = Job.objects.filter(pk__in=tally.cancelled).exclude(
        status=JobStatus.CANCELLED.value
    )
    # A cancel answered 202 may still lose the race with the job's own end (it succeeded first).
    assert not cancelled_ok.exclude(status=JobStatus.SUCCEEDED.value).exists()
    failed = Job.objects.filter(pk__in=tally.jobs, status=JobStatus.FAILED.value)
    assert not failed.exists(), list(failed.values_list("pk", "error_message")[:5])


@pytest.fixture
def setup(bench_user: User, api_key: str) -> Setup:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    workspace = services.workspace_create(user=bench_user, name="Load")
    big = services.workspace_create(user=bench_user, name="Many jobs")
    operation = make_operation("noop", "true")
    jobs = Job.objects.bulk_create(
        Job(
            operation=operation,
            workspace=big,
            owner=bench_user,
            status=JobStatus.SUCCEEDED.value,
            executor="local-docker",
            inputs={"n": i},
            run_spec={"image": TEST_IMAGE, "command": "true", "mounts": [{"x": "y"}] * 50},
            stdout_tail="o" * 4000,
        )
        for i in range(seeded_jobs())
    )
    files = File.objects.bulk_create(
        File(
            workspace=big,
            owner=bench_user,
            name=f"result-{i}.txt",
            size=1,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///seeded/{job.pk}",
            produced_by=job,
        )
        for i, job in enumerate(jobs)
    )
    return Setup(api_key, workspace, big, operation, str(jobs[0].pk), str(files[0].pk))


def test_mixed_load_then_with_a_worker_killed_and_restarted(setup: Setup, bench_dir: Path) -> None:
    seconds = duration()
    server_dir = bench_dir / "server"
    settings_env = {"FERRY_Q_SYNC": "false", "FERRY_POLL_LOOP_S": "25"}
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "FERRY_TEST_STORAGE_ROOT": str(server_dir / "storage"),
        "TMPDIR": str(server_dir / "tmp"),
        "PYTHONUNBUFFERED": "1",
        "FERRY_LEASE_TTL_S": "5",
        "FERRY_RESUBMIT_AFTER_S": "5",
        "FERRY_REFINALIZE_AFTER_S": "10",
        **settings_env,
    }
    engine = docker.from_env(timeout=60)
    try:
        with gunicorn_server(
            server_dir, workers=GUNICORN_WORKERS, extra_env=settings_env
        ) as server:
            with qcluster(bench_dir, worker_env):
                # One client alone first: what each endpoint costs without queueing.
                alone = run_load(server.base_url, setup, SERIAL_S, lambda elapsed: None, 1)
                report("One client alone (service times)", alone, SERIAL_S, 1)
                verify_writes(alone)
                first = run_load(server.base_url, setup, seconds, lambda elapsed: None)
                report("Mixed load", first, seconds)
                verify_writes(first)

            # Again, with the worker killed a third of the way in and restarted right away.
            restarts: list[Any] = []
            stack = contextlib.ExitStack()
            worker = stack.enter_context(qcluster(bench_dir, worker_env))

            def kill_and_restart(elapsed: float) -> None:
                if restarts or elapsed < seconds / 3:
                    return
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
                restarts.append(stack.enter_context(qcluster(bench_dir, worker_env)))
                print(f"\nworker killed and restarted at {elapsed:.1f} s")

            with stack:
                second = run_load(server.base_url, setup, seconds, kill_and_restart)
                report("Mixed load, worker SIGKILLed and restarted once", second, seconds)
                assert restarts, "the worker was not killed"
                verify_writes(second)
            print(server.log_tail(10))
    finally:
        ours = {str(pk) for pk in Job.objects.values_list("pk", flat=True)}
        for container in engine.containers.list(all=True, filters={"label": "ferry.job"}):
            if container.labels.get("ferry.job") in ours:  # not other test runs' containers
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        engine.close()
