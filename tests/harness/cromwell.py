"""The Cromwell test server (``tests/cromwell_server``) as session-scoped pytest fixtures.

Use ``pytest_plugins = ["tests.harness.cromwell"]`` (it brings ``tests.harness.buckets``), then:

- ``cromwell_server``: real runs with miniwdl on the local Docker engine; outputs uploaded to
  the bucket ``cromwell-executions`` on the ``moto_server`` fixture and reported as s3:// URIs.
- ``cromwell_sim``: the simulated mode (nothing runs; workflows move along the clock).

Both yield a :class:`CromwellServer`: ``.url``, ``.bucket``, ``.s3_config`` (a BucketConfig,
None for the simulation), ``.faults(**switches)``, ``.counters()``, ``.reset()``, ``.stop()``,
``.start()`` (same port, same state folder: workflows are remembered), ``.log_tail()``.
A server that doesn't start fails the tests with its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server

pytest_plugins = ["tests.harness.buckets"]  # moto_server

REPO_ROOT = Path(__file__).resolve().parents[2]
EXECUTIONS_BUCKET = "cromwell-executions"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


class CromwellServer:
    """One server process; ``stop()``/``start()`` keep its port and its work folder."""

    def __init__(
        self,
        name: str,
        work_dir: Path,
        settings: dict[str, Any],
        s3_config: Any = None,
    ) -> None:
        self.name = name
        self.work_dir = work_dir
        self.port = int(settings["port"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = str(settings.get("bucket", EXECUTIONS_BUCKET))
        self.s3_config = s3_config
        self.log_path = work_dir / "server.log"
        self._config_file = work_dir / "server-config.json"
        self._config_file.write_text(json.dumps(settings))
        self._config_file.chmod(0o600)  # holds the S3 secret
        self._process: subprocess.Popen[bytes] | None = None
        self._session = requests.Session()

    # -- process -------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the process and wait until it answers; fails the test with its log if not."""
        if self.is_running:
            return
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.cromwell_server", "--config", str(self._config_file)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with code {self._process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/engine/v1/status", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{self.name} was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (the server stops its miniwdl runs first), SIGKILL if it takes too long."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._session.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    # -- control API ---------------------------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(method, f"{self.url}/_test/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def faults(self, **switches: Any) -> dict[str, Any]:
        """Set fault switches: status_503_next, drop_next, down, delay_s, no_describe,
        describe_refuses, submit_lag_s, query_lag_s, abort_lag_s (see tests/cromwell_server/README.md)."""
        return dict(self._control("POST", "faults", switches))

    def know_document(self, source: str, describe: dict[str, Any], run_as: str) -> None:
        """Answer ``describe`` for exactly ``source`` and run ``run_as`` when it is submitted
        (a Cromwell accepting what miniwdl refuses; tests/cromwell_server/documents.py)."""
        self._control(
            "POST", "documents", {"source": source, "describe": describe, "run_as": run_as}
        )

    def counters(self) -> dict[str, int]:
        """Requests per route (``status``, ``queryPost``, ...) plus ``_total``/``_503``/``_dropped``."""
        return dict(self._control("GET", "counters"))

    def reset(self, workflows: bool = False) -> None:
        """Faults and counters back to start; ``workflows=True`` also forgets every workflow."""
        self._control("POST", "reset", {"workflows": workflows})

    def settings(self, **values: Any) -> dict[str, Any]:
        """Simulation timings (sim_start_s, sim_run_s, sim_fail_fraction, ...), submit_lag_s."""
        return dict(self._control("POST", "settings", values))

    def simulate_bulk(self, count: int, status: str = "Running") -> list[str]:
        """Create ``count`` simulated workflows at once (visible at once); their ids."""
        return list(
            self._control("POST", "simulate_bulk", {"count": count, "status": status})["ids"]
        )


def _ensure_docker_for_miniwdl() -> None:
    from tests.harness.docker import (
        DockerHarnessError,
        ensure_busybox_image,
        ensure_docker,
        ensure_swarm,
    )

    try:
        ensure_docker()
        ensure_busybox_image()
        ensure_swarm()
    except DockerHarnessError as error:
        pytest.fail(f"the Cromwell test server needs Docker: {error}")


def _ensure_bucket(s3: S3Server, bucket: str) -> None:
    client = s3.boto3_client()
    try:
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
    finally:
        client.close()


@contextlib.contextmanager
def _server(name: str, settings: dict[str, Any], s3_config: Any = None) -> Iterator[CromwellServer]:
    from tests.harness.buckets import free_ports

    work_dir = Path(tempfile.mkdtemp(prefix=f"ferry-{name}-"))
    (port,) = free_ports(1)
    server = CromwellServer(
        name, work_dir, {**settings, "port": port, "work_dir": str(work_dir)}, s3_config
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cromwell_server(moto_server: S3Server) -> Iterator[CromwellServer]:
    """Real runs; outputs in s3://cromwell-executions on moto."""
    _ensure_docker_for_miniwdl()
    _ensure_bucket(moto_server, EXECUTIONS_BUCKET)
    settings = {
        "s3_endpoint": moto_server.endpoint_url,
        "s3_access_key_id": moto_server.access_key_id,
        "s3_secret_access_key": moto_server.secret_access_key,
        "bucket": EXECUTIONS_BUCKET,
        "outputs": "s3",
        "submit_lag_s": 1.0,
    }
    with _server("cromwell", settings, moto_server.config()) as server:
        yield server


@pytest.fixture(scope="session")
def cromwell_sim() -> Iterator[CromwellServer]:
    """Simulated mode: Submitted -> Running after 0.5 s -> Succeeded 2 s later (settable)."""
    settings = {
        "simulate": True,
        "bucket": EXECUTIONS_BUCKET,
        "submit_lag_s": 1.0,
        "log_requests": False,
    }
    with _server("cromwell-sim", settings) as server:
        yield server
