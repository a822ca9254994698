"""A real gunicorn serving Ferry on 127.0.0.1 for the benchmarks, and tools to watch it.

    with gunicorn_server(workdir, workers=2) as server:
        requests.get(server.base_url + "/healthz")

The server uses the test database of the running pytest session (built from
``settings.DATABASES["default"]``, so create the data with ``transactional_db``: rows must be
committed to be seen) and keeps its files under ``workdir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MIB = 1024 * 1024


def database_url(db: Mapping[str, Any] | None = None) -> str:
    """A DATABASE_URL for the database pytest-django created (call after test DB creation)."""
    db = db if db is not None else settings.DATABASES["default"]
    engine = str(db["ENGINE"])
    if not engine.endswith("postgresql"):
        raise RuntimeError(f"the benchmarks need PostgreSQL, not {engine}")
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(db.get("HOST") or HOST)
    port = str(db.get("PORT") or "5432")
    options = []
    if db.get("CONN_MAX_AGE"):
        options.append(f"conn_max_age={int(db['CONN_MAX_AGE'])}")
    if db.get("CONN_HEALTH_CHECKS"):
        options.append("conn_health_checks=true")
    query = "?" + "&".join(options) if options else ""
    return f"postgres://{auth}{host}:{port}/{quote(str(db['NAME']), safe='')}{query}"


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL server of the test database: the postmaster,
    its live processes and its reaped backends (Django opens one per request unless
    CONN_MAX_AGE is set). None when it cannot be found."""
    port = int(settings.DATABASES["default"].get("PORT") or 5432)
    try:
        pids = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
        if len(pids) != 1:
            return None
        postmaster = psutil.Process(pids.pop())
        times = postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in postmaster.children():
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return float(total)
    except psutil.Error:
        return None


def session() -> requests.Session:
    """A requests session that never uses proxies from the environment and moves bodies in
    1 MiB blocks (urllib3's default of 16 KiB makes the client the bottleneck)."""
    s = requests.Session()
    s.trust_env = False
    adapter = _BigBlockAdapter()
    s.mount("http://", adapter)
    return s


class _BigBlockAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = MIB
        super().init_poolmanager(*args, **kwargs)


@dataclass
class GunicornServer:
    base_url: str
    port: int
    master: Any  # psutil.Process
    log_path: Path
    expected_workers: int
    sync: bool

    def workers(self) -> list[Any]:
        """The master's worker processes (psutil.Process objects)."""
        return list(self.master.children(recursive=False))

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def gunicorn_server(
    workdir: Path,
    *,
    workers: int = 2,
    threads: int = 1,
    timeout: int = 900,
    extra_env: Mapping[str, str] | None = None,
    start_timeout: float = 60.0,
    app: str = "config.wsgi:application",
    worker_class: str | None = None,
) -> Iterator[GunicornServer]:
    """Start ``gunicorn <app>`` (Ferry's ``config.wsgi:application`` unless told) with sync
    workers (unless ``threads`` > 1, or ``worker_class`` names another kind, e.g. deploy's
    ``uvicorn_worker.UvicornWorker`` with ``app="config.asgi:application"``) on a free port of 127.0.0.1, wait until /healthz answers and every worker is up, yield, then stop it.

    The listening socket is bound here and handed to gunicorn as ``fd://`` so there is no race
    for the port. ``workdir`` receives ``storage/`` (FERRY_TEST_STORAGE_ROOT), ``tmp/`` (TMPDIR)
    and ``gunicorn.log``.
    """
    storage = workdir / "storage"
    tmpdir = workdir / "tmp"
    storage.mkdir(parents=True, exist_ok=True)
    tmpdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "gunicorn.log"
    config_path = workdir / "gunicorn.conf.py"
    # An explicit (empty) config file, so a gunicorn.conf.py in the working directory is not read.
    config_path.write_text("# settings are given on the command line\n")
    listener = _listening_socket()
    port = int(listener.getsockname()[1])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "FERRY_TEST_STORAGE_ROOT": str(storage),
        # config.settings.test calls tempfile.mkdtemp() at import; keep those inside workdir.
        "TMPDIR": str(tmpdir),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--config",
        str(config_path),
        "--bind",
        f"fd://{listener.fileno()}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class or ("gthread" if threads > 1 else "sync"),
        "--threads",
        str(threads),
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--worker-tmp-dir",
        str(tmpdir),
        "--log-level",
        "warning",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )
    listener.close()
    master = psutil.Process(proc.pid)
    server = GunicornServer(
        base_url=f"http://{HOST}:{port}",
        port=port,
        master=master,
        log_path=log_path,
        expected_workers=workers,
        sync=threads <= 1 and worker_class in (None, "sync"),
    )
    known_children: set[int] = set()
    try:
        _wait_until_ready(proc, server, start_timeout)
        known_children.update(w.pid for w in server.workers())
        yield server
    finally:
        with contextlib.suppress(psutil.Error):
            known_children.update(w.pid for w in server.workers())
        _stop(proc, known_children)


def _wait_until_ready(proc: subprocess.Popen[bytes], server: GunicornServer, limit: float) -> None:
    deadline = time.monotonic() + limit
    with session() as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {proc.returncode} while starting:\n{server.log_tail()}"
                )
            try:
                ok = http.get(server.base_url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                ok = False
            # Workers import the app after they fork: all must have booted, not only one.
            if (
                ok
                and len(server.workers()) == server.expected_workers
                and (not server.sync or _healthz_on_each_worker(server))
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not become ready within {limit:.0f} s:\n{server.log_tail()}"
                )
            time.sleep(0.1)


def _healthz_on_each_worker(server: GunicornServer) -> bool:
    try:
        responses = on_each_worker(server, raw_request(server, "GET", "/healthz"), limit=10.0)
    except (OSError, RuntimeError):
        return False
    return all(r.status == 200 for r in responses)


def _stop(proc: subprocess.Popen[bytes], children: set[int]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # Workers normally exit with the master; make sure none of ours is left behind.
    for pid in children:
        with contextlib.suppress(psutil.Error):
            child = psutil.Process(pid)
            if "gunicorn" in " ".join(child.cmdline()):
                child.kill()


# ------------------------------------------------------------------ one request on every worker


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _read_response(sock: socket.socket, limit: float) -> RawResponse:
    sock.settimeout(limit)
    chunks: list[bytes] = []
    while True:  # gunicorn's sync worker closes every connection after one response
        chunk = sock.recv(MIB)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise RuntimeError(f"not an HTTP response: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split()[1]), headers, body)


def raw_request(
    server: GunicornServer,
    method: str,
    target: str,
    key: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    """The bytes of one HTTP/1.1 request for :func:`on_each_worker` (``key``: an API token)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{server.port}", "Connection: close"]
    if key:
        lines.append(f"Authorization: Token {key}")
    if body or method in ("PUT", "POST", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Content-Type: {content_type or 'application/octet-stream'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def on_each_worker(server: GunicornServer, request: bytes, *, limit: float = 30.0) -> list[Any]:
    """Send the raw HTTP/1.1 ``request`` (with ``Connection: close``) once to *every* worker.

    Each connection sends the request up to, not including, the blank line that ends the
    headers, so the sync worker that accepts it stays blocked reading; once every worker holds
    one of our connections (seen with psutil) the rest is sent and the responses are read.
    Used to warm every worker up (lazy imports, first queries) before anything is measured.
    Only for sync workers: a threaded worker would take several connections at once.
    """
    if not server.sync:
        raise RuntimeError("on_each_worker needs sync workers")
    end = request.index(b"\r\n\r\n")
    first, rest = request[:end], request[end:]
    workers = server.workers()
    socks: list[socket.socket] = []
    try:
        for _ in workers:
            sock = socket.create_connection((HOST, server.port), timeout=limit)
            sock.sendall(first)
            socks.append(sock)
        ports = {int(s.getsockname()[1]) for s in socks}
        deadline = time.monotonic() + limit
        while True:
            holders = set()
            for worker in workers:
                with contextlib.suppress(psutil.Error):
                    for conn in worker.net_connections(kind="tcp"):
                        if conn.raddr and conn.raddr.port in ports:
                            holders.add(worker.pid)
            if len(holders) == len(workers):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(holders)} of {len(workers)} workers took a connection "
                    f"within {limit:.0f} s"
                )
            time.sleep(0.01)
        for sock in socks:
            sock.sendall(rest)
        return [_read_response(sock, limit) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


# ---------------------------------------------------------------------------------- RSS sampler


@dataclass
class RssSampler:
    """Samples the RSS of every worker of ``server`` every ``interval`` seconds in a thread.

    ``baseline`` is each worker's RSS when sampling started (for a worker that appears later,
    its first sample); ``peak`` its highest sample.
    """

    server: GunicornServer
    interval: float = 0.05
    baseline: dict[int, int] = field(default_factory=dict)
    peak: dict[int, int] = field(default_factory=dict)
    samples: int = 0
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for worker in self.server.workers():
            with contextlib.suppress(psutil.Error):
                rss = int(worker.memory_info().rss)
                self.baseline.setdefault(worker.pid, rss)
                self.peak[worker.pid] = max(self.peak.get(worker.pid, 0), rss)
        self.samples += 1

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()

    def growth(self) -> dict[int, int]:
        return {pid: self.peak[pid] - base for pid, base in self.baseline.items()}

    def max_growth(self) -> int:
        """The largest growth of any single worker over its RSS before, in bytes."""
        return max(self.growth().values(), default=0)
