"""Every list against WebMEV's requests/s on the 1,000-file data set, served as Ferry deploys.

    FERRY_BENCH_SECONDS=10    how long each list is loaded, per mode

The server: gunicorn with 3 uvicorn workers (``uvicorn_worker.UvicornWorker``) serving
``config.asgi:application``, as deploy/gunicorn.conf.py runs it (a database connection per
request, as config/asgi.py sets), the shape WebMEV was measured with (3 workers); 4 concurrent
clients, each with its own keep-alive session.

The data (WebMEV's 1,000-file data set): one user, member of 10 workspaces with 100 files each
(1,000 files), 100 finished jobs (10 per workspace, of 20 operations), each with 2 of those files
as its outputs.

Each list is measured two ways:

- first page: GET of the list's first page (Ferry's default page size, 50), back to back;
- walk: the client reads the whole list, following ``next`` with the largest page size (500),
  and a walk counts once (what one WebMEV request returns: its lists are not paginated).

WebMEV is not run by this benchmark (it was not installed here: it needs services of its own),
so the anchors are the figures measured side by side with WebMEV before (issue 14: 3 sync
workers, 4 clients), the lower end of each range. Printed: requests/s, walks/s, p50, and
the ratio to the anchor next to the goal (3x); and, as the ceiling of the machine in the same run,
/healthz (no authentication, no database) under the same load, with each list's pages/s as a
fraction of it. Asserted: every answer is right (the rows a page
must hold, every row once in a walk); no wall-clock figure is asserted.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from api import services
from api.models import File, FileStatus, FileType, User, Workspace
from operations.models import Job, Operation, OperationMode
from operations.states import JobStatus

from .gunicorn_server import GunicornServer, gunicorn_server
from .gunicorn_server import session as http_session
from .reporting import env_number, percentile, show

WORKSPACES = 10
FILES_PER_WORKSPACE = 100
JOBS_PER_WORKSPACE = 10
OUTPUTS_PER_JOB = 2
OPERATIONS = 20
CLIENTS = 4
WORKERS = 3
FIRST_PAGE = 50  # REST_FRAMEWORK["PAGE_SIZE"]
WALK_PAGE = 500  # CreatedCursorPagination.max_page_size
GOAL = 3.0

# WebMEV, 1,000-file data set, 3 sync workers, 4 clients (issue 14): the lower end of each range.
WEBMEV_REQUESTS_PER_S = {
    "files": 2.0,
    "a workspace's files": 7.0,
    "jobs": 24.0,
    "workspaces": 88.0,
    "operations": 94.0,
}


@dataclass
class Data:
    key: str
    workspace: str  # the one whose files are listed
    totals: dict[str, int]  # list -> rows in it


@pytest.fixture
def webmev_data(bench_user: User, api_key: str) -> Data:
    workspaces = [
        services.workspace_create(user=bench_user, name=f"WebMEV {n:02d}")
        for n in range(WORKSPACES)
    ]
    operations = Operation.objects.bulk_create(
        Operation(
            name=f"webmev-op-{n}",
            version="1",
            revision=f"r{n}",
            mode=OperationMode.DOCKER,
            spec={"name": f"webmev-op-{n}", "inputs": {}, "outputs": {}},
            image="busybox",
            source="bench",
        )
        for n in range(OPERATIONS)
    )
    jobs = Job.objects.bulk_create(
        Job(
            operation=operations[n % OPERATIONS],
            workspace=workspaces[n % WORKSPACES],
            owner=bench_user,
            status=JobStatus.SUCCEEDED.value,
            inputs={"count_matrix": str(uuid.uuid4()), "n": n},
            outputs={"result": "", "n": n},
        )
        for n in range(WORKSPACES * JOBS_PER_WORKSPACE)
    )
    files = []
    for w, workspace in enumerate(workspaces):
        ws_jobs = [job for job in jobs if job.workspace_id == workspace.pk]
        for n in range(FILES_PER_WORKSPACE):
            name = f"sample-{n:03d}.tsv"
            job_index = n // OUTPUTS_PER_JOB
            files.append(
                File(
                    workspace=workspace,
                    owner=bench_user,
                    name=name,
                    size=1000 + n,
                    sha256=hashlib.sha256(f"{w}/{name}".encode()).hexdigest(),
                    content_type="text/tab-separated-values; charset=utf-8",
                    file_type=FileType.TABLE,
                    status=FileStatus.READY,
                    storage_uri=f"file:///bench/{uuid.uuid4()}",
                    produced_by=ws_jobs[job_index] if job_index < len(ws_jobs) else None,
                )
            )
    File.objects.bulk_create(files, batch_size=500)
    totals = {
        "files": File.objects.count(),
        "a workspace's files": File.objects.filter(workspace=workspaces[0]).count(),
        "jobs": Job.objects.count(),
        "workspaces": Workspace.objects.count(),
        "operations": Operation.objects.count(),
    }
    return Data(api_key, str(workspaces[0].pk), totals)


def _paths(data: Data) -> dict[str, str]:
    return {
        "files": "/api/files/",
        "a workspace's files": f"/api/files/?workspace={data.workspace}",
        "jobs": "/api/jobs/",
        "workspaces": "/api/workspaces/",
        "operations": "/api/operations/",
    }


@dataclass
class Result:
    name: str
    mode: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of a page, or of a walk
    pages: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def _with(path: str, page_size: int) -> str:
    return f"{path}{'&' if '?' in path else '?'}page_size={page_size}"


def _healthz(http: Any, base: str, path: str, headers: dict[str, str], rows: int) -> int:
    response = http.get(base + "/healthz", timeout=60)
    if response.status_code != 200:
        raise AssertionError(f"/healthz: {response.status_code} {response.text[:200]}")
    return 1


def _first_page(http: Any, base: str, path: str, headers: dict[str, str], rows: int) -> int:
    response = http.get(base + path, headers=headers, timeout=60)
    if response.status_code != 200:
        raise AssertionError(f"{path}: {response.status_code} {response.text[:200]}")
    got = len(response.json()["results"])
    if got != min(rows, FIRST_PAGE):
        raise AssertionError(f"{path}: {got} rows on the first page, not {min(rows, FIRST_PAGE)}")
    return 1


def _walk(http: Any, base: str, path: str, headers: dict[str, str], rows: int) -> int:
    url: str | None = base + _with(path, WALK_PAGE)
    seen: set[str] = set()
    pages = 0
    while url:
        response = http.get(url, headers=headers, timeout=60)
        if response.status_code != 200:
            raise AssertionError(f"{url}: {response.status_code} {response.text[:200]}")
        body = response.json()
        seen.update(row["id"] for row in body["results"])
        pages += 1
        url = body["next"]
    if len(seen) != rows:
        raise AssertionError(f"{path}: a walk saw {len(seen)} rows, not {rows}")
    return pages


def _load(
    server: GunicornServer,
    key: str,
    name: str,
    mode: str,
    one: Callable[[Any, str, str, dict[str, str], int], int],
    path: str,
    rows: int,
    seconds: float,
) -> Result:
    result = Result(name, mode)
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS + 1)
    headers = {"Authorization": f"Token {key}"}
    deadline = 0.0

    def client() -> None:
        latencies: list[float] = []
        pages = 0
        errors: list[str] = []
        with http_session() as http:
            one(http, server.base_url, path, headers, rows)  # a warm connection
            start.wait(timeout=60)
            while time.monotonic() < deadline and len(errors) < 20:
                began = time.perf_counter()
                try:
                    pages += one(http, server.base_url, path, headers, rows)
                    latencies.append(time.perf_counter() - began)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            result.latencies.extend(latencies)
            result.pages += pages
            result.errors.extend(errors)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds + 5  # (set again once all are connected)
    start.wait(timeout=60)
    began = time.monotonic()
    deadline = began + seconds
    for thread in threads:
        thread.join(timeout=seconds + 120)
    result.seconds = time.monotonic() - began
    return result


def test_lists_against_webmev(webmev_data: Data, bench_dir: Path) -> None:
    seconds = env_number("FERRY_BENCH_SECONDS", 10)
    paths = _paths(webmev_data)
    results: list[Result] = []
    with gunicorn_server(
        bench_dir / "server",
        workers=WORKERS,
        app="config.asgi:application",
        worker_class="uvicorn_worker.UvicornWorker",
        # As deployed (deploy/gunicorn.conf.py): each ASGI worker keeps a pool of connections.
        extra_env={"FERRY_DB_POOL": "true"},
    ) as server:
        # The ceiling of this machine and server in this run: no authentication, no database.
        ceiling = _load(server, webmev_data.key, "/healthz", "ceiling", _healthz, "", 0, seconds)
        for name, path in paths.items():
            rows = webmev_data.totals[name]
            results.append(
                _load(server, webmev_data.key, name, "first page", _first_page, path, rows, seconds)
            )
            results.append(_load(server, webmev_data.key, name, "walk", _walk, path, rows, seconds))
        log_tail = server.log_tail(15)

    table_rows: list[list[object]] = []
    for result in results:
        anchor = WEBMEV_REQUESTS_PER_S[result.name]
        ratio = result.rate / anchor
        of_ceiling = result.pages / result.seconds / ceiling.rate if ceiling.rate else 0.0
        unit = "req/s" if result.mode == "first page" else "walks/s"
        table_rows.append(
            [
                result.name,
                webmev_data.totals[result.name],
                result.mode,
                f"{result.rate:.1f} {unit}",
                f"{result.pages / result.seconds:.1f}" if result.seconds else "-",
                f"{percentile(sorted(result.latencies), 0.5) * 1000:.1f}",
                f"{anchor:g}",
                f"{ratio:.1f}x",
                "met" if ratio >= GOAL else "MISSED",
                f"{of_ceiling:.2f}",
                len(result.errors),
            ]
        )
    show(
        f"Lists vs WebMEV (1,000 files in {WORKSPACES} workspaces, "
        f"{WORKSPACES * JOBS_PER_WORKSPACE} jobs with {OUTPUTS_PER_JOB} output files each, "
        f"{OPERATIONS} operations): gunicorn with {WORKERS} uvicorn workers (config.asgi), "
        f"{CLIENTS} clients, {seconds:g} s per list and mode; first page = {FIRST_PAGE} rows, "
        f"a walk = every page at page_size={WALK_PAGE}. WebMEV anchors: the figures measured "
        "side by side in issue 14 (lower end; WebMEV is not run here).",
        [
            "list",
            "rows",
            "mode",
            "rate",
            "pages/s",
            "p50 ms",
            "WebMEV req/s",
            "ratio",
            f"goal {GOAL:g}x",
            "pages/s of /healthz's",
            "errors",
        ],
        table_rows,
    )
    print(
        f"/healthz (no authentication, no database) on the same server in the same run: "
        f"{ceiling.rate:.1f} req/s, p50 {percentile(sorted(ceiling.latencies), 0.5) * 1000:.1f} ms "
        f"({len(ceiling.errors)} errors): the most any list could reach here."
    )
    if log_tail.strip():
        print(f"\ngunicorn log (last lines):\n{log_tail}")
    for result in [ceiling, *results]:
        assert not result.errors, f"{result.name} ({result.mode}): {result.errors[:5]}"
        assert result.latencies, f"{result.name} ({result.mode}): nothing completed"
