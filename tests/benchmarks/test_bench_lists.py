"""List endpoints under load through a real gunicorn, against /healthz measured in the same run.

    FERRY_BENCH_SECONDS=20    how long each endpoint is loaded

1,000 files in 10 workspaces. For each endpoint, 4 concurrent clients (threads, each with its own
requests.Session) send requests for FERRY_BENCH_SECONDS to gunicorn with 4 sync workers; the
requests/s and the p50/p99 latency are printed, the requests/s also as a ratio of /healthz (no
authentication, no database) under the same load. Asserted: every response is correct, and the
number of SQL queries of a list request does not depend on the page size.

At scale (``test_first_page_at_scale``):

    FERRY_BENCH_SCALE_FILES=100000   files, in 20 workspaces
    FERRY_BENCH_SCALE_JOBS=10000     jobs, each with one of those files as its output
    FERRY_BENCH_SCALE_REQUESTS=25    requests per list and mode

the first page of every list (as a member of all the workspaces, and as staff) is requested in
process; its p50 is printed next to the same request without the list indexes (dropped in a
transaction that is rolled back afterwards, so the baseline is the same data in the same run),
and the workspaces list's SQL next to the per-request file count it replaced. Only ratios and
figures are printed; no wall-clock time is asserted.
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
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import services
from api.models import File, FileStatus, FileType, User, Workspace
from operations.models import Job, Operation, OperationMode

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


# ------------------------------------------------------------------------ first page at scale

SCALE_WORKSPACES = 20
# The indexes the lists' orderings use (api 0015, operations 0008): dropped for the baseline.
LIST_INDEXES = [
    "file_created_idx",
    "file_name_idx",
    "file_size_idx",
    "file_updated_idx",
    "file_ws_name_idx",
    "file_ws_size_idx",
    "file_ws_updated_idx",
    "workspace_created_idx",
    "workspace_name_idx",
    "workspace_updated_idx",
    "job_created_idx",
    "job_ws_created_idx",
    "job_status_created_idx",
    "job_ws_status_created_idx",
    "job_finished_idx",
    "operation_created_idx",
]


@dataclass
class ScaleDataset:
    member: User
    staff: User
    workspaces: list[Workspace]
    files: int
    jobs: int


@pytest.fixture
def scale_dataset(bench_user: User) -> ScaleDataset:
    """FERRY_BENCH_SCALE_FILES files and FERRY_BENCH_SCALE_JOBS jobs in 20 workspaces of the
    benchmark user (rows only); every job has one of the files as its output."""
    files_total = int(env_number("FERRY_BENCH_SCALE_FILES", 100_000))
    jobs_total = int(env_number("FERRY_BENCH_SCALE_JOBS", 10_000))
    staff = User.objects.create_user(
        email="bench-staff@example.org", password="bench-password-123", is_staff=True
    )
    workspaces = [
        services.workspace_create(user=bench_user, name=f"Scale {n:02d}")
        for n in range(SCALE_WORKSPACES)
    ]
    operations = Operation.objects.bulk_create(
        Operation(
            name=f"scale-op-{n}",
            version="1",
            revision=f"r{n}",
            mode=OperationMode.DOCKER,
            spec={"name": f"scale-op-{n}", "inputs": {}, "outputs": {}},
            image="busybox",
            source="bench",
        )
        for n in range(20)
    )
    statuses = ["succeeded", "failed", "cancelled"]  # 3 and 20 workspaces: each has all
    jobs = Job.objects.bulk_create(
        (
            Job(
                operation=operations[n % len(operations)],
                workspace=workspaces[n % SCALE_WORKSPACES],
                owner=bench_user,
                status=statuses[n % len(statuses)],
                inputs={"n": n},
            )
            for n in range(jobs_total)
        ),
        batch_size=2000,
    )
    batch: list[File] = []
    for n in range(files_total):
        job = jobs[n] if n < len(jobs) else None
        workspace = job.workspace if job is not None else workspaces[n % SCALE_WORKSPACES]
        batch.append(
            File(
                workspace=workspace,
                owner=bench_user,
                name=f"sample-{(n * 7919) % files_total:06d}.tsv",
                size=(n * 104729) % 1_000_003,
                file_type=FileType.TABLE,
                status=FileStatus.READY,
                storage_uri=f"file:///scale/{n}",
                produced_by=job,
            )
        )
        if len(batch) == 5000:
            File.objects.bulk_create(batch)
            batch = []
    File.objects.bulk_create(batch)
    # Finished in creation order (for ordering=-finished_at).
    Job.objects.update(finished_at=F("created_at"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ScaleDataset(bench_user, staff, workspaces, files_total, jobs_total)


def _first_page_p50(client: APIClient, path: str, requests: int) -> tuple[float, int, int]:
    """(p50 ms, rows, SQL queries) of ``requests`` requests for the first page of ``path``."""
    timings: list[float] = []
    rows = queries = 0
    for n in range(requests + 2):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.content[:300]
        rows, queries = len(response.json()["results"]), len(captured.captured_queries)
        if n >= 2:  # the first two warm the caches
            timings.append(elapsed)
    return percentile(sorted(timings), 0.5) * 1000, rows, queries


def _sql_p50(sql: str, params: list[Any], requests: int) -> float:
    timings = []
    with connection.cursor() as cursor:
        for _ in range(requests):
            began = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            timings.append(time.perf_counter() - began)
    return percentile(sorted(timings), 0.5) * 1000


def test_first_page_at_scale(scale_dataset: ScaleDataset) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the scale benchmark runs on Postgres")
    requests = int(env_number("FERRY_BENCH_SCALE_REQUESTS", 25))
    data = scale_dataset
    workspace = data.workspaces[0].pk
    lists = [
        "/api/workspaces/",
        "/api/files/",
        f"/api/files/?workspace={workspace}",
        "/api/files/?ordering=name",
        "/api/files/?ordering=-size",
        "/api/files/?ordering=-updated_at",
        f"/api/files/?workspace={workspace}&ordering=name",
        "/api/jobs/",
        f"/api/jobs/?workspace={workspace}",
        "/api/jobs/?status=failed",
        f"/api/jobs/?workspace={workspace}&status=failed",
        "/api/jobs/?ordering=-finished_at",
        "/api/operations/",
    ]
    clients = {}
    for label, user in (("member", data.member), ("staff", data.staff)):
        client = APIClient()
        client.force_authenticate(user)
        clients[label] = client

    measured: dict[tuple[str, str], tuple[float, int, int]] = {}
    for label, client in clients.items():
        for path in lists:
            measured[label, path] = _first_page_p50(client, path, requests)
    baseline: dict[tuple[str, str], tuple[float, int, int]] = {}
    with transaction.atomic():
        with connection.cursor() as cursor:
            for name in LIST_INDEXES:
                cursor.execute(f'DROP INDEX "{name}"')
        for label, client in clients.items():
            for path in lists:
                baseline[label, path] = _first_page_p50(client, path, requests)
        transaction.set_rollback(True)

    rows: list[list[object]] = []
    for (label, path), (p50, items, queries) in measured.items():
        before = baseline[label, path][0]
        rows.append(
            [
                f"GET {path}",
                label,
                items,
                queries,
                f"{before:.1f}",
                f"{p50:.1f}",
                f"{before / p50:.1f}x",
            ]
        )
    show(
        f"First page at scale: {data.files:,} files and {data.jobs:,} jobs in "
        f"{SCALE_WORKSPACES} workspaces, in process, p50 of {requests} requests "
        "(baseline: the same request without the list indexes, same data, same run)",
        ["list", "as", "rows", "SQL queries", "p50 ms baseline", "p50 ms", "speed-up"],
        rows,
    )

    # The workspaces list's SQL: the counter the database keeps, against counting the files of
    # each workspace of the page on every request (what it did before).
    from api.selectors import workspaces_listed_for

    kept = workspaces_listed_for(data.member).order_by("-created_at")[:51]
    counted = (
        Workspace.objects.filter(memberships__user=data.member)
        .annotate(
            file_count=Coalesce(
                Subquery(
                    File.objects.filter(workspace=OuterRef("pk"))
                    .order_by()
                    .values("workspace")
                    .annotate(n=Count("pk"))
                    .values("n")
                ),
                0,
            )
        )
        .order_by("-created_at")[:51]
    )
    assert {w.pk: w.file_count for w in kept} == {w.pk: w.file_count for w in counted}  # type: ignore[attr-defined]
    kept_sql, kept_params = kept.query.sql_with_params()
    counted_sql, counted_params = counted.query.sql_with_params()
    kept_ms = _sql_p50(kept_sql, list(kept_params), requests)
    counted_ms = _sql_p50(counted_sql, list(counted_params), requests)
    show(
        "Workspaces page SQL: file_count counted per request vs the kept counter",
        ["query", "p50 ms"],
        [
            ["count the files of each workspace (before)", f"{counted_ms:.2f}"],
            ["read WorkspaceFileCount (now)", f"{kept_ms:.2f}"],
            ["speed-up", f"{counted_ms / kept_ms:.1f}x"],
        ],
    )
    for key, (_p50, items, _queries) in measured.items():
        assert items > 0, key
        assert baseline[key][1] == items, key
