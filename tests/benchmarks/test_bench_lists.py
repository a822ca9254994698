"""List endpoints under load through a real gunicorn, against /healthz measured in the same run.

    FERRY_BENCH_SECONDS=20    how long each endpoint is loaded

1,000 files in 10 workspaces. For each endpoint, 4 concurrent clients (threads, each with its own
requests.Session) send requests for FERRY_BENCH_SECONDS to gunicorn with 4 sync workers; the
requests/s and the p50/p99 latency are printed, the requests/s also as a ratio of /healthz (no
authentication, no database) under the same load. Asserted: every response is correct, and the
number of SQL queries of a list request does not depend on the page size.
"""

from __future__ import annotations

import hashlib
import resource
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import services
from api.models import File, FileStatus, FileType, User, Workspace

from .gunicorn_server import (
    GunicornServer,
    gunicorn_server,
    on_each_worker,
    postgres_cpu_seconds,
    raw_request,
)
from .gunicorn_server import session as http_session
from .reporting import env_number, percentile, show

WORKSPACES = 10
FILES_PER_WORKSPACE = 100
CLIENTS = 4
WORKERS = 4
DEFAULT_PAGE_SIZE = 50  # REST_FRAMEWORK["PAGE_SIZE"]


@dataclass
class Dataset:
    user: User
    key: str
    workspaces: list[Workspace]


@pytest.fixture
def dataset(bench_user: User, api_key: str) -> Dataset:
    """10 workspaces owned by the benchmark user with 100 files each (rows only, no bytes)."""
    workspaces = [
        services.workspace_create(user=bench_user, name=f"Benchmark {n:02d}")
        for n in range(WORKSPACES)
    ]
    files = []
    for workspace in workspaces:
        for n in range(FILES_PER_WORKSPACE):
            name = f"sample-{n:03d}.tsv"
            files.append(
                File(
                    workspace=workspace,
                    owner=bench_user,
                    name=name,
                    size=1000 + n,
                    sha256=hashlib.sha256(f"{workspace.pk}/{name}".encode()).hexdigest(),
                    content_type="text/tab-separated-values; charset=utf-8",
                    file_type=FileType.TABLE,
                    status=FileStatus.READY,
                    storage_uri=f"file:///bench/{uuid.uuid4()}",
                )
            )
    File.objects.bulk_create(files, batch_size=500)
    assert File.objects.count() == WORKSPACES * FILES_PER_WORKSPACE
    return Dataset(bench_user, api_key, workspaces)


# ------------------------------------------------------------------------- queries vs page size


def test_list_queries_do_not_grow_with_page_size(dataset: Dataset) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {dataset.key}")
    # The first request with a token also records its last use (one UPDATE a minute at most).
    assert client.get("/api/workspaces/").status_code == 200
    workspace = str(dataset.workspaces[0].pk)
    cases: list[tuple[str, str, dict[str, str], tuple[int, ...]]] = [
        # Only 10 workspaces exist: page sizes 1 and 10 are the ones that differ in rows.
        ("GET /api/workspaces/", "/api/workspaces/", {}, (1, 10, 200)),
        ("GET /api/files/?workspace=<id>", "/api/files/", {"workspace": workspace}, (10, 200)),
        ("GET /api/files/", "/api/files/", {}, (10, 200)),
    ]
    rows: list[list[object]] = []
    counts: dict[str, dict[int, int]] = {}
    queries: dict[tuple[str, int], list[str]] = {}
    for label, path, params, sizes in cases:
        for page_size in sizes:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, {**params, "page_size": str(page_size)})
            assert response.status_code == 200, response.content[:500]
            items = len(response.json()["results"])
            counts.setdefault(label, {})[page_size] = len(captured.captured_queries)
            queries[label, page_size] = [q["sql"] for q in captured.captured_queries]
            rows.append([label, page_size, items, len(captured.captured_queries)])
    show(
        "SQL queries per list request (DRF test client, token authentication)",
        ["endpoint", "page_size", "items returned", "SQL queries"],
        rows,
    )
    for label, by_size in counts.items():
        if len(set(by_size.values())) != 1:
            biggest = max(by_size, key=lambda size: by_size[size])
            listing = "\n".join(queries[label, biggest])
            pytest.fail(
                f"{label}: the query count depends on the page size {by_size}; "
                f"the queries at page_size={biggest}:\n{listing}"
            )


# ------------------------------------------------------------------------------------ load test


@dataclass
class Endpoint:
    label: str
    target: Callable[[int], str]  # request number -> path and query
    check: Callable[[Any], bool]  # decoded JSON body -> correct?
    authenticated: bool = True


@dataclass
class LoadResult:
    endpoint: Endpoint
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    workers_cpu: float = 0.0
    postgres_cpu: float | None = None
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def _workers_cpu(server: GunicornServer) -> float:
    total = 0.0
    for worker in server.workers():
        times = worker.cpu_times()
        total += times.user + times.system
    return total


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(server: GunicornServer, endpoint: Endpoint, key: str, seconds: float) -> LoadResult:
    """CLIENTS threads send requests back to back for ``seconds``; every answer is checked."""
    result = LoadResult(endpoint, seconds)
    lock = threading.Lock()
    start_together = threading.Barrier(CLIENTS + 1)
    headers = {"Authorization": f"Token {key}"} if endpoint.authenticated else {}
    deadline = 0.0

    def client(number: int) -> None:
        latencies: list[float] = []
        errors: list[str] = []
        with http_session() as http:
            start_together.wait(timeout=30)
            request_no = number
            while time.monotonic() < deadline:
                url = server.base_url + endpoint.target(request_no)
                request_no += CLIENTS
                began = time.perf_counter()
                try:
                    response = http.get(url, headers=headers, timeout=30)
                    elapsed = time.perf_counter() - began
                    if response.status_code != 200:
                        errors.append(f"{url}: {response.status_code} {response.text[:200]}")
                    elif not endpoint.check(response.json()):
                        errors.append(f"{url}: unexpected body {response.text[:200]}")
                    else:
                        latencies.append(elapsed)
                except Exception as exc:
                    errors.append(f"{url}: {type(exc).__name__}: {exc}")
                if len(errors) > 100:
                    break
        with lock:
            result.latencies.extend(latencies)
            result.errors.extend(errors)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    cpu_before = _workers_cpu(server)
    pg_before = postgres_cpu_seconds()
    client_before = _client_cpu()
    deadline = time.monotonic() + seconds
    start_together.wait(timeout=30)
    began = time.monotonic()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    result.seconds = time.monotonic() - began
    result.workers_cpu = _workers_cpu(server) - cpu_before
    result.client_cpu = _client_cpu() - client_before
    pg_after = postgres_cpu_seconds()
    if pg_before is not None and pg_after is not None:
        result.postgres_cpu = pg_after - pg_before
    return result


def test_list_throughput(dataset: Dataset, bench_dir: Path) -> None:
    seconds = env_number("FERRY_BENCH_SECONDS", 20)
    workspaces = [str(w.pk) for w in dataset.workspaces]

    def results_count(expected: int) -> Callable[[Any], bool]:
        return lambda body: len(body["results"]) == expected

    endpoints = [
        Endpoint(
            "GET /healthz (baseline)",
            lambda n: "/healthz",
            lambda body: body == {"status": "ok"},
            authenticated=False,
        ),
        Endpoint("GET /api/workspaces/", lambda n: "/api/workspaces/", results_count(WORKSPACES)),
        Endpoint(
            "GET /api/files/?workspace=<id>",
            lambda n: f"/api/files/?workspace={workspaces[n % WORKSPACES]}",
            results_count(min(DEFAULT_PAGE_SIZE, FILES_PER_WORKSPACE)),
        ),
    ]
    with gunicorn_server(bench_dir / "server", workers=WORKERS) as server:
        # Every worker serves every endpoint twice before anything is timed.
        for endpoint in endpoints:
            for n in range(2):
                key = dataset.key if endpoint.authenticated else None
                responses = on_each_worker(
                    server, raw_request(server, "GET", endpoint.target(n), key)
                )
                assert all(r.status == 200 and endpoint.check(r.json()) for r in responses)
        results = [run_load(server, endpoint, dataset.key, seconds) for endpoint in endpoints]
        log_tail = server.log_tail(15)

    baseline = results[0].rate
    rows: list[list[object]] = []
    for result in results:
        ordered = sorted(result.latencies)
        done = max(len(result.latencies), 1)
        pg = "-" if result.postgres_cpu is None else f"{result.postgres_cpu / done * 1000:.1f}"
        rows.append(
            [
                result.endpoint.label,
                len(result.latencies),
                f"{result.rate:.1f}",
                f"{result.rate / baseline:.2f}" if baseline else "-",
                f"{percentile(ordered, 0.50) * 1000:.1f}",
                f"{percentile(ordered, 0.99) * 1000:.1f}",
                len(result.errors),
                f"{result.workers_cpu / done * 1000:.1f}",
                pg,
                f"{result.client_cpu / done * 1000:.1f}",
            ]
        )
    show(
        f"List endpoints: {WORKSPACES * FILES_PER_WORKSPACE} files in {WORKSPACES} workspaces, "
        f"{CLIENTS} concurrent clients for {seconds:g} s per endpoint, gunicorn with "
        f"{WORKERS} sync workers (page size {DEFAULT_PAGE_SIZE})",
        [
            "endpoint",
            "requests",
            "req/s",
            "ratio vs /healthz",
            "p50 ms",
            "p99 ms",
            "errors",
            "CPU ms/req: gunicorn",
            "postgres",
            "clients",
        ],
        rows,
    )
    if log_tail.strip():
        print(f"\ngunicorn log (last lines):\n{log_tail}")
    for result in results:
        assert not result.errors, f"{result.endpoint.label}: {result.errors[:5]}"
        assert result.latencies, f"{result.endpoint.label}: no request completed"
