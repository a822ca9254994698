"""Event stream fan-out (`make bench`): 100 clients on GET /api/events/ of one uvicorn process
(the ASGI app as deployed, on the test PostgreSQL); a job's status changes and commits in this
process; how long until each client has the event (p50/p99 over every client and round), and
the server's memory per connected client.

Goal (issue 14): p50 < 100 ms, p99 < 500 ms. Knobs: FERRY_BENCH_STREAM_CLIENTS (100),
FERRY_BENCH_STREAM_ROUNDS (30).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
from django.conf import settings
from django.test import Client

from api import services
from api.models import User
from operations.models import Job, Operation
from operations.states import JobStatus
from operations.transitions import transition
from tests.api.sse import SseClient
from tests.benchmarks.gunicorn_server import HOST, MIB, ROOT, _listening_socket, database_url
from tests.benchmarks.reporting import env_number, percentile, show
from tests.operations_fixtures import make_echo_operation


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("uvicorn did not answer /healthz in 60 s")


def test_bench_event_stream_fan_out(bench_user: User, bench_dir: Path) -> None:
    clients = int(env_number("FERRY_BENCH_STREAM_CLIENTS", 100))
    rounds = int(env_number("FERRY_BENCH_STREAM_ROUNDS", 30))
    workspace = services.workspace_create(user=bench_user, name="bench-events")
    operation = Operation.objects.filter(name="echo").first() or make_echo_operation()
    browser = Client()
    browser.force_login(bench_user)
    cookie = {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value}

    listener = _listening_socket()
    port = int(listener.getsockname()[1])
    base = f"http://{HOST}:{port}"
    log = bench_dir / "uvicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "FERRY_TEST_STORAGE_ROOT": str(bench_dir / "storage"),
        "TMPDIR": str(bench_dir),
        "FERRY_EVENTS_HEARTBEAT_SECONDS": "15",
    }
    streams: list[SseClient] = []
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--fd",
                str(listener.fileno()),
                "--lifespan",
                "off",
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )
    try:
        _wait_healthy(base, proc, log)
        server = psutil.Process(proc.pid)
        # One stream first, so the per-process hub and listener are not counted per client.
        streams.append(SseClient(f"{base}/api/events/?workspace={workspace.pk}", cookies=cookie))
        assert streams[0].wait_connected() == 200
        time.sleep(0.5)
        rss_before = server.memory_info().rss
        for _ in range(clients - 1):
            streams.append(
                SseClient(f"{base}/api/events/?workspace={workspace.pk}", cookies=cookie)
            )
        for stream in streams:
            assert stream.wait_connected(60) == 200
        time.sleep(1.0)
        rss_after = server.memory_info().rss
        per_client_kib = (rss_after - rss_before) / max(1, clients - 1) / 1024

        latencies: list[float] = []
        for _ in range(rounds):
            job = Job.objects.create(
                operation=operation,
                workspace=workspace,
                owner=bench_user,
                inputs={"text": "hello"},
                executor="local-docker",
                status=JobStatus.QUEUED,
            )
            assert transition(job, JobStatus.SUBMITTED)  # returns once committed
            committed = time.monotonic()
            deadline = committed + 30
            for stream in streams:
                while True:
                    event = stream.next(timeout=max(0.1, deadline - time.monotonic()))
                    if event["job"] == str(job.pk):
                        latencies.append((stream.received_at[event["id"]] - committed) * 1000)
                        break
            time.sleep(0.05)
        latencies.sort()
        p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
        show(
            f"Event stream: {clients} clients on one uvicorn process, {rounds} job status "
            "changes (commit -> event at each client)",
            ["figure", "measured", "goal"],
            [
                ["latency p50", f"{p50:.1f} ms", "< 100 ms"],
                ["latency p99", f"{p99:.1f} ms", "< 500 ms"],
                ["latency max", f"{latencies[-1]:.1f} ms", ""],
                ["server RSS, 1 client", f"{rss_before / MIB:.1f} MiB", ""],
                [f"server RSS, {clients} clients", f"{rss_after / MIB:.1f} MiB", ""],
                ["server memory per client", f"{per_client_kib:.0f} KiB", ""],
            ],
        )
        assert len(latencies) == clients * rounds
    finally:
        for stream in streams:
            stream.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        listener.close()
