"""Trivial jobs through the HTTP API and a real worker, against a bare `docker run --rm` loop.

    FERRY_BENCH_JOBS=200          jobs (and `docker run`s) timed
    FERRY_BENCH_CONCURRENCY=4     jobs in flight at once (client threads)
    FERRY_BENCH_WATCH=stream      how clients learn that their job finished: "stream" (one
                                  shared watcher on the event stream, GET /api/events/?workspace=,
                                  as a frontend would), "list" (one shared watcher: GET
                                  /api/jobs/?ordering=-finished_at every 50 ms, a detail GET only
                                  for a job it did not find there) or "each" (every client GETs
                                  /api/jobs/<id>/ every 50 ms)
    FERRY_BENCH_SERVER=           "asgi": gunicorn's uvicorn workers serving config.asgi, as
                                  deployed (the stream needs it; the default with "stream"), or
                                  "wsgi": sync workers serving config.wsgi (the default otherwise)
    FERRY_BENCH_COUNT_ENGINE=     "1": the worker talks to the engine through a counting proxy (a
                                  Python relay: it slows the engine calls down, so compare its
                                  other figures only with runs that count too) and the report
                                  lists the engine requests per job
    FERRY_BENCH_ROUNDS=5          the jobs run in this many rounds, each a share of the `docker
                                  run`s then the same share of Ferry jobs: other work on the
                                  machine weighs on both alike
    FERRY_BENCH_COMMAND=true      the operation's (and the baseline's) shell command; the Docker
                                  executor currently fails a run that exits 0 without writing
                                  /work/outputs.json, even for an operation that declares no
                                  outputs, so until that changes use 'echo {} > outputs.json'

Goals (printed, not asserted): Ferry's throughput is at least 0.90 of the `docker run --rm` loop
at the same concurrency, and the added latency per job (Ferry's submit-to-seen-succeeded time
minus the median `docker run --rm` time) has a p50 under 150 ms and a p99 under 500 ms.

Same run, same machine, in alternating rounds (FERRY_BENCH_ROUNDS):

* Baseline: FERRY_BENCH_JOBS runs of ``docker run --rm --network none ferry/busybox:latest
  true`` from a pool of FERRY_BENCH_CONCURRENCY threads (one `docker` CLI process per run).
* Like for like: as many runs of the same container through the engine's API (create, start,
  wait, remove from a pool of FERRY_BENCH_CONCURRENCY threads) with no network said as Ferry
  says it: NetworkMode "none" and NetworkDisabled, which the CLI can't say and with which the
  engine skips its network set-up (a re-exec of dockerd per container: about half of what a
  `docker run --rm --network none true` costs the machine here). Ferry's job containers are
  created that way, so against this baseline the report shows Ferry's own cost (no goal set).
* Ferry: gunicorn (one worker per client: uvicorn workers serving the ASGI app as deployed, or
  sync workers serving WSGI, see FERRY_BENCH_SERVER) and one django-q2 cluster (``manage.py
  qcluster``, config.settings.test: 3 workers, the ORM broker's pusher woken by NOTIFY; the poll
  loop runs for up to FERRY_POLL_LOOP_S=25 s, waking when the Docker engine tells of a
  container's exit, else every FERRY_POLL_INTERVAL_S, default 0.5 s, and finalizes small results
  in the same pass; which jobs a pass polls as deployed: FERRY_POLL_WATCHED_S=1,
  FERRY_POLL_UNWATCHED_S=15, FERRY_POLL_EVENTS_RECONCILE_S=60, where the test settings poll
  every active job in every pass)
  on the test database. FERRY_BENCH_CONCURRENCY client threads each POST /api/jobs/ and wait for that job to
  be terminal before sending the next; a job's latency is from just before its POST to the
  response in which the client saw it succeeded.

All three are warmed up first (FERRY_BENCH_CONCURRENCY untimed runs each). Afterwards the job
rows, their status events and django-q2's task records tell where the time went (the worker
keeps no successful task records, as deployed, unless FERRY_Q_SAVE_LIMIT=0: then the per-task
split C1/C2 is shown too),
and the CPU used by each part of the system is printed per job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest
import requests
from django_q.models import Task

from api import services
from api.models import User, Workspace
from operations.models import Event, Job, Operation
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.harness.docker_proxy import CountingProxy
from tests.operations_fixtures import TEST_IMAGE, make_operation

from .gunicorn_server import (
    ROOT,
    GunicornServer,
    database_url,
    gunicorn_server,
    on_each_worker,
    postgres_cpu_seconds,
    raw_request,
)
from .gunicorn_server import session as http_session
from .reporting import env_number, percentile, show

THROUGHPUT_GOAL = 0.90
SAME_CONTAINER = "engine API, same container (no network set-up)"
ADDED_P50_GOAL_MS = 150.0
ADDED_P99_GOAL_MS = 500.0
POLL_S = 0.05  # how often clients look at their jobs
JOB_TIMEOUT_S = 120.0  # one job (or one `docker run`) taking longer fails the benchmark
TERMINAL = {"succeeded", "failed", "cancelled"}
DEPLOYED_POLL_SETTINGS = {
    "FERRY_POLL_WATCHED_S": "1.0",
    "FERRY_POLL_UNWATCHED_S": "15.0",
    "FERRY_POLL_EVENTS_RECONCILE_S": "60.0",
    "FERRY_POLL_RECORD_EVERY_S": "1.0",
}
HTTP_TIMEOUT = (10, 60)


def jobs_count() -> int:
    return int(env_number("FERRY_BENCH_JOBS", 200))


def concurrency() -> int:
    return int(env_number("FERRY_BENCH_CONCURRENCY", 4))


def watch_mode() -> str:
    mode = os.environ.get("FERRY_BENCH_WATCH", "").strip() or "stream"
    if mode not in ("stream", "list", "each"):
        raise ValueError(f"FERRY_BENCH_WATCH must be 'stream', 'list' or 'each', not {mode!r}")
    return mode


def server_kind(mode: str) -> str:
    kind = os.environ.get("FERRY_BENCH_SERVER", "").strip() or (
        "asgi" if mode == "stream" else "wsgi"
    )
    if kind not in ("asgi", "wsgi"):
        raise ValueError(f"FERRY_BENCH_SERVER must be 'asgi' or 'wsgi', not {kind!r}")
    if mode == "stream" and kind != "asgi":
        raise ValueError("FERRY_BENCH_WATCH=stream needs FERRY_BENCH_SERVER=asgi")
    return kind


def rounds() -> int:
    return max(1, int(env_number("FERRY_BENCH_ROUNDS", 5)))


def command() -> str:
    return os.environ.get("FERRY_BENCH_COMMAND", "").strip() or "true"


# ------------------------------------------------------------------------------- CPU accounting


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return float(total)
    except psutil.Error:
        return 0.0


def _engine_pids() -> list[int]:
    """dockerd and containerd (the per-container shims are reparented to init and not counted)."""
    pids = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("dockerd", "containerd"):
            pids.append(proc.pid)
    return pids


def _machine_busy() -> float:
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")
    return float(sum(getattr(times, name, 0.0) for name in busy))


@dataclass
class CpuMeter:
    """CPU seconds used by each part of the system between start() and stop()."""

    gunicorn_pid: int | None = None
    worker_pid: int | None = None
    used: dict[str, float] = field(default_factory=dict)
    _before: dict[str, float | None] = field(default_factory=dict)

    def _read(self) -> dict[str, float | None]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        values: dict[str, float | None] = {
            "docker engine (dockerd, containerd)": sum(_tree_cpu(p) for p in _engine_pids()),
            "docker CLI processes": children.ru_utime + children.ru_stime,
            "postgres": postgres_cpu_seconds(),
            "benchmark client (this process)": own.ru_utime + own.ru_stime,
            "whole machine (all processes)": _machine_busy(),
        }
        if self.gunicorn_pid is not None:
            values["gunicorn (master and workers)"] = _tree_cpu(self.gunicorn_pid)
        if self.worker_pid is not None:
            values["django-q2 cluster (qcluster tree)"] = _tree_cpu(self.worker_pid)
        return values

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> None:
        after = self._read()
        for key, value in after.items():
            before = self._before.get(key)
            if value is not None and before is not None:
                self.used[key] = value - before


# ------------------------------------------------------------------------------------ baseline


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: CpuMeter = field(default_factory=CpuMeter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def add(self, other: Phase) -> None:
        """Count ``other`` (a later round of the same kind) in with this one."""
        self.latencies += other.latencies
        self.wall += other.wall
        for key, used in other.cpu.used.items():
            self.cpu.used[key] = self.cpu.used.get(key, 0.0) + used


def _remove_containers(client: Any, *, name: str | None = None, label: str | None = None) -> None:
    filters = {"name": name} if name else {"label": label}
    with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
        for container in client.containers.list(all=True, filters=filters):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)


def run_baseline(count: int, clients: int, image: str, cmd: str, *, timed: bool = True) -> Phase:
    """``count`` runs of ``docker run --rm`` from ``clients`` threads."""
    token = uuid.uuid4().hex[:12]
    argv = ["true"] if cmd == "true" else ["/bin/sh", "-c", cmd]

    def one(n: int) -> float:
        began = time.perf_counter()
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--name",
                f"ferry-bench-{token}-{n}",
                image,
                *argv,
            ],
            capture_output=True,
            timeout=JOB_TIMEOUT_S,
            check=False,
        )
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"docker run failed ({done.returncode}): {done.stderr[-500:]!r}")
        return elapsed

    return _pooled_runs(count, clients, one, token, timed=timed)


def _pooled_runs(
    count: int, clients: int, one: Callable[[int], float], token: str, *, timed: bool
) -> Phase:
    """``one(n)`` for n in range(``count``) from ``clients`` threads, timed (and CPU metered
    when ``timed``); the containers named ``ferry-bench-<token>-*`` are removed afterwards."""
    phase = Phase()
    client = docker.from_env(timeout=60)
    try:
        if timed:
            phase.cpu.start()
        began = time.perf_counter()
        with ThreadPoolExecutor(clients, thread_name_prefix="bare-run") as pool:
            phase.latencies = list(pool.map(one, range(count)))
        phase.wall = time.perf_counter() - began
        if timed:
            phase.cpu.stop()
    finally:
        _remove_containers(client, name=f"ferry-bench-{token}-")
        client.close()
    return phase


def run_engine_baseline(
    count: int, clients: int, image: str, cmd: str, *, timed: bool = True
) -> Phase:
    """``count`` runs of the same container through the engine's API, started as Ferry starts
    a job's (no network: NetworkMode "none" and NetworkDisabled, which `docker run` can't
    say), from ``clients`` threads: create, start, wait, remove; one SDK client per thread."""
    token = uuid.uuid4().hex[:12]
    argv = ["true"] if cmd == "true" else ["/bin/sh", "-c", cmd]
    local = threading.local()
    clients_made: list[Any] = []
    lock = threading.Lock()

    def api() -> Any:
        if not hasattr(local, "api"):
            local.api = docker.APIClient(timeout=int(JOB_TIMEOUT_S))
            with lock:
                clients_made.append(local.api)
        return local.api

    def one(n: int) -> float:
        began = time.perf_counter()
        engine = api()
        created = engine.create_container(
            image,
            argv,
            name=f"ferry-bench-{token}-{n}",
            network_disabled=True,
            host_config=engine.create_host_config(network_mode="none"),
        )
        engine.start(created["Id"])
        status = engine.wait(created["Id"], timeout=JOB_TIMEOUT_S)["StatusCode"]
        engine.remove_container(created["Id"])
        elapsed = time.perf_counter() - began
        if status != 0:
            raise RuntimeError(f"the container exited {status}")
        return elapsed

    try:
        return _pooled_runs(count, clients, one, token, timed=timed)
    finally:
        for made in clients_made:
            made.close()


# -------------------------------------------------------------------------------- django-q2 worker


@contextlib.contextmanager
def qcluster(workdir: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py qcluster`` in its own session, logging to ``workdir/worker.log``; on exit
    SIGTERM, then SIGKILL for whatever of its process tree is left."""
    log = (workdir / "worker.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    family: set[int] = set()
    try:
        yield proc
    finally:
        with contextlib.suppress(psutil.Error):
            family.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        left = []
        for pid in family:
            with contextlib.suppress(psutil.Error):
                child = psutil.Process(pid)
                if "qcluster" in " ".join(child.cmdline()):
                    child.kill()
                    left.append(child)
        psutil.wait_procs(left, timeout=10)


# --------------------------------------------------------------------------------- Ferry clients


@dataclass
class JobRun:
    sent: float  # time.time() just before the POST
    job_id: str = ""
    posted: float = 0.0  # time.time() when the POST answered
    seen: float = 0.0  # time.time() when the client saw the job terminal
    status: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def latency(self) -> float:
        return self.seen - self.sent


@dataclass
class Watcher:
    """Finds out when jobs finish: one list request every POLL_S for all of them ("list"), or
    each client polls its own job ("each", then this only counts requests)."""

    server: GunicornServer
    key: str
    page_size: int
    stop: threading.Event = field(default_factory=threading.Event)
    pending: dict[str, JobRun] = field(default_factory=dict)
    reads: int = 0
    fallbacks: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    workspace: str = ""
    ended: dict[str, str] = field(default_factory=dict)  # (stream) ends of jobs not added yet
    connected: threading.Event = field(default_factory=threading.Event)
    stream: Any = None

    def add(self, run: JobRun) -> None:
        with self.lock:
            ended = self.ended.pop(run.job_id, None)
            if ended is None:
                self.pending[run.job_id] = run
        if ended is not None:  # the stream told of its end before the POST answered
            self._finish(run, ended)

    def _finish(self, run: JobRun, status: str) -> None:
        run.status, run.seen = status, time.time()
        with self.lock:
            self.pending.pop(run.job_id, None)
        run.done.set()

    def get(self, http: requests.Session, path: str) -> Any:
        with self.lock:
            self.reads += 1
        response = http.get(
            self.server.base_url + path,
            headers={"Authorization": f"Token {self.key}"},
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def run_list(self) -> None:
        url = f"/api/jobs/?ordering=-finished_at&page_size={self.page_size}"
        with http_session() as http:
            tick = time.monotonic()
            while not self.stop.is_set():
                tick += POLL_S
                self.stop.wait(max(0.0, tick - time.monotonic()))
                with self.lock:
                    waiting = dict(self.pending)
                if not waiting:
                    continue
                try:
                    listed = {j["id"]: j["status"] for j in self.get(http, url)["results"]}
                    for job_id, run in waiting.items():
                        status = listed.get(job_id)
                        if status is None:  # pushed off the page: ask for it alone
                            self.fallbacks += 1
                            status = self.get(http, f"/api/jobs/{job_id}/")["status"]
                        if status in TERMINAL:
                            self._finish(run, status)
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(self.errors) > 20:
                        return

    def run_stream(self) -> None:
        """Follow GET /api/events/?workspace= (one connection for all the clients' jobs) and
        finish each job at its terminal job.status event."""
        url = f"{self.server.base_url}/api/events/?workspace={self.workspace}"
        with http_session() as http:
            try:
                with http.get(
                    url,
                    headers={"Authorization": f"Token {self.key}"},
                    stream=True,
                    timeout=(10, 120),
                ) as response:
                    self.stream = response
                    if response.status_code != 200:
                        raise RuntimeError(f"GET /api/events/: {response.status_code}")
                    self.connected.set()
                    self._read_stream(response)
            except Exception as exc:
                if not self.stop.is_set():
                    self.errors.append(f"event stream: {type(exc).__name__}: {exc}")
            finally:
                self.connected.set()

    def _read_stream(self, response: requests.Response) -> None:
        data = ""
        for raw in response.iter_lines(decode_unicode=True):
            if self.stop.is_set():
                return
            line = raw or ""
            if line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                event, data = json.loads(data), ""
                payload = event.get("payload") or {}
                if event.get("kind") == "job.status" and payload.get("terminal"):
                    self._ended(str(event["job"]), str(payload["to"]))

    def _ended(self, job_id: str, status: str) -> None:
        with self.lock:
            run = self.pending.get(job_id)
            if run is None:
                self.ended[job_id] = status
        if run is not None:
            self._finish(run, status)

    def close_stream(self) -> None:
        response = self.stream
        if response is not None:
            raw = getattr(getattr(getattr(response.raw, "_fp", None), "fp", None), "raw", None)
            sock = getattr(raw, "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                response.close()

    def wait_each(self, http: requests.Session, run: JobRun, deadline: float) -> None:
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            status = self.get(http, f"/api/jobs/{run.job_id}/")["status"]
            if status in TERMINAL:
                self._finish(run, status)
                return


def run_ferry(
    server: GunicornServer,
    key: str,
    body: dict[str, Any],
    count: int,
    clients: int,
    mode: str,
    cpu: CpuMeter | None = None,
) -> tuple[Phase, list[JobRun], Watcher]:
    """``count`` jobs through the API from ``clients`` threads, each waiting for its job."""
    watcher = Watcher(server, key, page_size=2 * clients, workspace=str(body["workspace"]))
    runs: list[JobRun] = []
    lock = threading.Lock()
    failures: list[str] = []
    abort = threading.Event()
    next_number = iter(range(count))
    phase_deadline = time.monotonic() + 60 + count * 1.5

    def client() -> None:
        with http_session() as http:
            while not abort.is_set():
                with lock:
                    if next(next_number, None) is None:
                        return
                run = JobRun(sent=time.time())
                try:
                    response = http.post(
                        server.base_url + "/api/jobs/",
                        json=body,
                        headers={"Authorization": f"Token {key}"},
                        timeout=HTTP_TIMEOUT,
                    )
                    run.posted = time.time()
                    if response.status_code != 201:
                        raise RuntimeError(
                            f"POST /api/jobs/: {response.status_code} {response.text[:300]}"
                        )
                    run.job_id = response.json()["id"]
                    with lock:
                        runs.append(run)
                    deadline = min(time.monotonic() + JOB_TIMEOUT_S, phase_deadline)
                    if mode == "each":
                        watcher.wait_each(http, run, deadline)
                    else:
                        watcher.add(run)
                        run.done.wait(max(0.0, deadline - time.monotonic()))
                    if not run.done.is_set():
                        raise RuntimeError(f"job {run.job_id} did not finish in time")
                except Exception as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    abort.set()
                    return

    phase = Phase(cpu=cpu or CpuMeter())
    watch_thread = None
    if mode in ("list", "stream"):
        target = watcher.run_list if mode == "list" else watcher.run_stream
        watch_thread = threading.Thread(target=target, name="job-watcher", daemon=True)
        watch_thread.start()
    if mode == "stream" and not watcher.connected.wait(30):
        raise AssertionError("the event stream did not open in 30 s")
    if watcher.errors:
        raise AssertionError(f"the event stream failed: {watcher.errors}")
    threads = [
        threading.Thread(target=client, name=f"job-client-{n}", daemon=True) for n in range(clients)
    ]
    phase.cpu.start()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, phase_deadline - time.monotonic() + JOB_TIMEOUT_S))
    phase.wall = time.perf_counter() - began
    phase.cpu.stop()
    watcher.stop.set()
    watcher.close_stream()
    if watch_thread is not None:
        watch_thread.join(timeout=10)
    failures.extend(watcher.errors)
    if failures:
        raise AssertionError(f"{len(failures)} client failure(s): {failures[:5]}")
    assert all(not t.is_alive() for t in threads), "client threads still running"
    phase.latencies = [r.latency for r in runs]
    return phase, runs, watcher


# ------------------------------------------------------------------------------------ reporting


def _ms(value: float) -> str:
    return f"{value * 1000:.0f}"


def _stats_row(label: str, values: Sequence[float], note: str = "") -> list[object]:
    ordered = sorted(values)
    if not ordered:
        return [label, 0, "-", "-", "-", "-", note]
    return [
        label,
        len(ordered),
        _ms(percentile(ordered, 0.50)),
        _ms(percentile(ordered, 0.90)),
        _ms(percentile(ordered, 0.99)),
        _ms(statistics.fmean(ordered)),
        note,
    ]


STATS_HEADERS = ["", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "what"]


def where_the_time_goes(runs: Sequence[JobRun]) -> None:
    """Per-job intervals from the client's clock, the job rows, the status events and
    django-q2's task records (all on the same machine's wall clock)."""
    by_id = {r.job_id: r for r in runs}
    jobs = {
        str(j["id"]): j
        for j in Job.objects.filter(pk__in=list(by_id)).values(
            "id", "created_at", "submitted_at", "started_at", "finished_at", "updated_at"
        )
    }
    finalizing: dict[str, float] = {}
    for event_job, event_at in Event.objects.filter(
        job_id__in=list(by_id), payload__to="finalizing"
    ).values_list("job_id", "created_at"):
        finalizing[str(event_job)] = event_at.timestamp()
    tasks: dict[tuple[str, str], tuple[float, float]] = {}
    names = [f"{kind}-{job_id}" for job_id in by_id for kind in ("submit", "finalize")]
    for name, task_started, task_stopped in Task.objects.filter(name__in=names).values_list(
        "name", "started", "stopped"
    ):
        kind, _, task_job = name.partition("-")
        tasks[kind, task_job] = (task_started.timestamp(), task_stopped.timestamp())

    series: dict[str, list[float]] = {}

    def add(label: str, value: float | None) -> None:
        if value is not None:
            series.setdefault(label, []).append(value)

    def ts(value: Any) -> float | None:
        return None if value is None else float(value.timestamp())

    for job_id, run in by_id.items():
        row = jobs[job_id]
        created, submitted = ts(row["created_at"]), ts(row["submitted_at"])
        started, finished = ts(row["started_at"]), ts(row["finished_at"])
        fin = finalizing.get(job_id)
        submit_task = tasks.get(("submit", job_id))
        finalize_task = tasks.get(("finalize", job_id))
        assert created
        assert submitted
        assert started
        assert finished
        add("A POST answered", run.posted - run.sent)
        add("B created_at - POST sent", created - run.sent)
        add("C submitted_at - created_at", submitted - created)
        add("D started_at - submitted_at", started - submitted)
        add("E finished_at - started_at", finished - started)
        add("F seen - finished_at", run.seen - finished)
        if submit_task:
            add("C1 submit task started - created_at", submit_task[0] - created)
            add("C2 submitted_at - submit task started", submitted - submit_task[0])
        if fin is not None:
            add("E0 finalizing event - submitted_at", fin - submitted)
            if not finalize_task:
                add("E3 finished_at - finalizing (in the poll loop)", finished - fin)
            if finalize_task:
                add("E1 finalize task started - finalizing", finalize_task[0] - fin)
                add("E2 finished_at - finalize task started", finished - finalize_task[0])
                add("G finalize task stopped - finished_at", finalize_task[1] - finished)
        add("total: seen - POST sent", run.latency)

    notes = {
        "A POST answered": "client: the POST /api/jobs/ round trip",
        "B created_at - POST sent": "request until the row is inserted",
        "C submitted_at - created_at": "broker pickup + executor.submit (create, start)",
        "C1 submit task started - created_at": "on_commit enqueue + broker poll + queue wait",
        "C2 submitted_at - submit task started": "submit_job: docker create + start + UPDATE",
        "D started_at - submitted_at": "wait for the poll loop to see it (RUNNING)",
        "E finished_at - started_at": "FINALIZING, finalize task pickup, collect",
        "E0 finalizing event - submitted_at": "poll loop: seen exited (same pass as D)",
        "E1 finalize task started - finalizing": "enqueue + broker poll + queue wait",
        "E2 finished_at - finalize task started": "finalize_job: collect + SUCCEEDED",
        "E3 finished_at - finalizing (in the poll loop)": "small results: collect + SUCCEEDED",
        "F seen - finished_at": "client: until a poll shows it succeeded",
        "G finalize task stopped - finished_at": "(after success) container + work dir removal",
        "total: seen - POST sent": "the job's latency",
    }
    rows = [_stats_row(label, series[label], notes.get(label, "")) for label in sorted(series)]
    show(
        "Where a Ferry job's time goes (job rows, status events, django-q2 task records)",
        STATS_HEADERS,
        rows,
    )


def cpu_table(phases: Sequence[tuple[str, Phase]], count: int) -> None:
    keys = [
        "docker engine (dockerd, containerd)",
        "docker CLI processes",
        "gunicorn (master and workers)",
        "django-q2 cluster (qcluster tree)",
        "postgres",
        "benchmark client (this process)",
        "whole machine (all processes)",
    ]
    rows: list[list[object]] = []
    for key in keys:
        cells: list[object] = [key]
        for _, phase in phases:
            used = phase.cpu.used.get(key)
            cells.append("-" if used is None else f"{used / count * 1000:.0f}")
        rows.append(cells)
    cores = psutil.cpu_count() or 1
    busy = [
        f"{phase.cpu.used.get('whole machine (all processes)', 0) / phase.wall / cores * 100:.0f}"
        for _, phase in phases
    ]
    rows.append(["machine busy (% of all cores over the phase)", *busy])
    show(f"CPU per job (ms), {cores} cores", ["process", *(label for label, _ in phases)], rows)


# ---------------------------------------------------------------------------------------- test


@dataclass
class Setup:
    user: User
    key: str
    workspace: Workspace
    operation: Operation


@pytest.fixture
def setup(bench_user: User, api_key: str) -> Setup:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    workspace = services.workspace_create(user=bench_user, name="Job benchmark")
    operation = make_operation("noop", command())
    return Setup(bench_user, api_key, workspace, operation)


def _wait_for(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_rounds(
    bare: Sequence[Callable[[int], Phase]],
    ferry: Callable[[int], tuple[Phase, list[JobRun], Watcher]],
    count: int,
) -> tuple[list[Phase], Phase, list[JobRun], Watcher]:
    """``count`` runs of each bare kind (`docker run`, the engine's API) and ``count`` Ferry
    jobs in FERRY_BENCH_ROUNDS alternating rounds; each kind's rounds summed (walls,
    latencies, CPU)."""
    total_bare, total_ferry = [Phase() for _ in bare], Phase()
    all_runs: list[JobRun] = []
    watchers: list[Watcher] = []
    shares = [count // rounds() + (1 if n < count % rounds() else 0) for n in range(rounds())]
    for share in (n for n in shares if n):
        for total, kind in zip(total_bare, bare, strict=True):
            total.add(kind(share))
        phase, runs, watcher = ferry(share)
        total_ferry.add(phase)
        all_runs += runs
        watchers.append(watcher)
    watcher = watchers[0]
    watcher.reads = sum(w.reads for w in watchers)
    watcher.fallbacks = sum(w.fallbacks for w in watchers)
    return total_bare, total_ferry, all_runs, watcher


def engine_requests_table(requests_seen: Sequence[str], count: int) -> None:
    """The engine requests the worker made, by method and path (ids and names left out)."""
    kinds: dict[str, int] = {}
    for line in requests_seen:
        method, _, target = line.partition(" ")
        path = re.sub(r"^/v[0-9.]+", "", target.split("?")[0])
        path = re.sub(r"/containers/(?!json$|create$)[^/]+", "/containers/<id>", path)
        kinds[f"{method} {path}"] = kinds.get(f"{method} {path}", 0) + 1
    rows: list[list[object]] = [
        [kind, n, f"{n / count:.2f}"] for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])
    ]
    rows.append(["all", len(requests_seen), f"{len(requests_seen) / count:.2f}"])
    show("Docker engine requests of the worker (timed phase)", ["request", "n", "per job"], rows)


def engine_proxy(bench_dir: Path) -> contextlib.AbstractContextManager[CountingProxy | None]:
    if os.environ.get("FERRY_BENCH_COUNT_ENGINE", "").strip() in ("", "0"):
        return contextlib.nullcontext()
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("FERRY_BENCH_COUNT_ENGINE needs the engine on /var/run/docker.sock")
    return CountingProxy(bench_dir)


def test_trivial_jobs_against_docker_run(setup: Setup, bench_dir: Path) -> None:
    count, clients, mode, cmd = jobs_count(), concurrency(), watch_mode(), command()
    kind = server_kind(mode)
    image = setup.operation.image

    # ---- baseline: docker run --rm
    run_baseline(clients, clients, image, cmd, timed=False)  # warm-ups
    run_engine_baseline(clients, clients, image, cmd, timed=False)

    # ---- Ferry: gunicorn + one django-q2 cluster on the test database
    server_dir = bench_dir / "server"
    settings_env = {
        "FERRY_Q_SYNC": "false",
        # As deployed (config.settings.base): no row per successful task, which django-q2's
        # default would keep and prune on every save. FERRY_Q_SAVE_LIMIT=0 keeps them all
        # (and so the C1/C2 split of the report).
        "FERRY_Q_SAVE_LIMIT": os.environ.get("FERRY_Q_SAVE_LIMIT", "-1"),
        "FERRY_POLL_LOOP_S": os.environ.get("FERRY_POLL_LOOP_S", "25"),
    }
    # As deployed (config.settings.base), not as the test settings (every job in every pass).
    for name, deployed in DEPLOYED_POLL_SETTINGS.items():
        settings_env[name] = os.environ.get(name, deployed)
    if os.environ.get("FERRY_POLL_INTERVAL_S"):
        settings_env["FERRY_POLL_INTERVAL_S"] = os.environ["FERRY_POLL_INTERVAL_S"]
    body = {
        "operation": str(setup.operation.pk),
        "workspace": str(setup.workspace.pk),
        "inputs": {},
    }
    engine = docker.from_env(timeout=60)
    try:
        asgi = kind == "asgi"
        with gunicorn_server(
            server_dir,
            workers=clients,
            # As deploy/gunicorn.conf.py: the ASGI workers keep a pool of connections.
            extra_env={**settings_env, "FERRY_DB_POOL": "true"} if asgi else settings_env,
            app="config.asgi:application" if asgi else "config.wsgi:application",
            worker_class="uvicorn_worker.UvicornWorker" if asgi else None,
        ) as server:
            worker_env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": database_url(),
                "FERRY_TEST_STORAGE_ROOT": str(server_dir / "storage"),
                "TMPDIR": str(server_dir / "tmp"),
                "PYTHONUNBUFFERED": "1",
                **settings_env,
            }
            with contextlib.ExitStack() as stack:
                proxy = stack.enter_context(engine_proxy(bench_dir))
                if proxy is not None:
                    worker_env["DOCKER_HOST"] = f"unix://{proxy.path}"
                worker = stack.enter_context(qcluster(bench_dir, worker_env))
                _wait_for(
                    lambda: len(psutil.Process(worker.pid).children(recursive=True)) >= 3,
                    60,
                    "the qcluster processes",
                )
                # Every gunicorn worker answers a job list, then a few untimed jobs run.
                if server.sync:
                    for response in on_each_worker(
                        server, raw_request(server, "GET", "/api/jobs/", setup.key)
                    ):
                        assert response.status == 200, response.body[:300]
                try:
                    _, warm_runs, _ = run_ferry(server, setup.key, body, clients, clients, mode)
                except AssertionError:
                    print((bench_dir / "worker.log").read_text(errors="replace")[-5000:])
                    raise
                warm_failed = [r for r in warm_runs if r.status != "succeeded"]
                if warm_failed:
                    job = Job.objects.get(pk=warm_failed[0].job_id)
                    pytest.fail(
                        f"warm-up job {job.pk} {job.status}: {job.error_message!r}; "
                        f"the command was {cmd!r} (FERRY_BENCH_COMMAND)"
                    )
                # Let the poll loop of the warm-up end, so the timed run starts like a cold one.
                _wait_for(lambda: not Job.objects.active().exists(), 30, "the warm-up to settle")
                time.sleep(1.0)
                asked_before = len(proxy.requests) if proxy is not None else 0
                (baseline, same_container), ferry, runs, watcher = run_rounds(
                    [
                        lambda n: run_baseline(n, clients, image, cmd),
                        lambda n: run_engine_baseline(n, clients, image, cmd),
                    ],
                    lambda n: run_ferry(
                        server,
                        setup.key,
                        body,
                        n,
                        clients,
                        mode,
                        cpu=CpuMeter(gunicorn_pid=server.master.pid, worker_pid=worker.pid),
                    ),
                    count,
                )
                engine_requests = proxy.requests[asked_before:] if proxy is not None else None
                gunicorn_log = server.log_tail(15)
    finally:
        job_ids = set(Job.objects.values_list("pk", flat=True))
        for container in engine.containers.list(all=True, filters={"label": "ferry.job"}):
            if uuid.UUID(container.labels["ferry.job"]) in job_ids:
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        engine.close()

    # ---- report
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    base_sorted = sorted(baseline.latencies)
    base_median = statistics.median(base_sorted)
    same_sorted = sorted(same_container.latencies)
    ferry_sorted = sorted(ferry.latencies)
    added = [latency - base_median for latency in ferry_sorted]
    added_same = [latency - statistics.median(same_sorted) for latency in ferry_sorted]
    ratio = baseline.wall / ferry.wall
    added_p50 = percentile(added, 0.50)
    added_p99 = percentile(added, 0.99)
    show(
        f"{count} trivial jobs ({cmd!r}, {image}), {clients} at a time: "
        f"`docker run --rm` loop vs Ferry (HTTP API on {kind.upper()} + 1 django-q2 cluster, "
        f"watch={mode}, {rounds()} alternating rounds)",
        ["", "jobs", "wall s", "jobs/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [
            [
                label,
                len(values),
                f"{phase.wall:.1f}",
                f"{phase.rate:.2f}",
                _ms(percentile(values, 0.50)),
                _ms(percentile(values, 0.90)),
                _ms(percentile(values, 0.99)),
                _ms(values[-1]),
            ]
            for label, phase, values in (
                ("docker run --rm", baseline, base_sorted),
                (SAME_CONTAINER, same_container, same_sorted),
                ("Ferry", ferry, ferry_sorted),
                ("Ferry - docker median (added)", ferry, added),
                ("Ferry - engine API median", ferry, added_same),
            )
        ],
    )
    show(
        "Goals",
        ["measure", "value", "goal", "met"],
        [
            [
                "throughput ratio (docker wall / Ferry wall)",
                f"{ratio:.2f}",
                f"≥ {THROUGHPUT_GOAL:.2f}",
                "yes" if ratio >= THROUGHPUT_GOAL else "NO",
            ],
            [
                "added latency p50 (ms)",
                _ms(added_p50),
                f"< {ADDED_P50_GOAL_MS:.0f}",
                "yes" if added_p50 * 1000 < ADDED_P50_GOAL_MS else "NO",
            ],
            [
                "added latency p99 (ms)",
                _ms(added_p99),
                f"< {ADDED_P99_GOAL_MS:.0f}",
                "yes" if added_p99 * 1000 < ADDED_P99_GOAL_MS else "NO",
            ],
        ],
    )
    same_ratio = same_container.wall / ferry.wall
    show(
        f"Like for like: Ferry against {SAME_CONTAINER} (Ferry's own cost; no goal set)",
        ["measure", "value"],
        [
            ["throughput ratio (engine API wall / Ferry wall)", f"{same_ratio:.2f}"],
            ["added latency p50 (ms)", _ms(percentile(added_same, 0.50))],
            ["added latency p99 (ms)", _ms(percentile(added_same, 0.99))],
            [
                "`docker run --rm` / engine API wall (the network set-up's share)",
                f"{baseline.wall / same_container.wall:.2f}",
            ],
        ],
    )
    where_the_time_goes(runs)
    cpu_table(
        [("docker run --rm", baseline), ("engine API", same_container), ("Ferry", ferry)], count
    )
    if engine_requests is not None:
        engine_requests_table(engine_requests, count)
    reads = (
        "one event stream for all jobs"
        if mode == "stream"
        else f"{watcher.reads} GET requests ({watcher.reads / count:.1f} per job, "
        f"{watcher.fallbacks} detail fallbacks)"
    )
    print(f"\nstatus reads: {reads}; job statuses: {statuses}")
    if gunicorn_log.strip():
        print(f"\ngunicorn log (last lines):\n{gunicorn_log}")

    assert len(runs) == count
    assert statuses == {"succeeded": count}, statuses
