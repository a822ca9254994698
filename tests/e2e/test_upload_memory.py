"""Memory of big uploads: PUT /api/files/upload/ on a real gunicorn worker (a subprocess) into
a local folder and into an S3 bucket (SeaweedFS), served both ways Ferry is started: WSGI (sync
worker) and ASGI (a uvicorn worker on config.asgi, as deploy/ and `make run` serve it). The
worker's peak RSS over its RSS before an upload must stay below a bound, and its RSS after each
upload must not climb from one upload to the next. Not timed: only memory is asserted (read
from /proc/<pid>/status of the worker), and the bytes the worker writes (/proc/<pid>/io): the
body is written once (into the stored file, or to the bucket's socket), never first to a
temporary file of the server's as Django's ASGI handler does with a body.

The environment of the server has no MALLOC_ARENA_MAX: the bound must hold however Ferry is
started. FERRY_TEST_UPLOAD_MEMORY_MB changes the body size (default 192 MiB).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import services
from api.models import User, Workspace
from tests.benchmarks.gunicorn_server import MIB, RssSampler, gunicorn_server, session
from tests.harness.buckets import S3Server

pytest_plugins = ["tests.harness.buckets"]

BODY_MIB = int(os.environ.get("FERRY_TEST_UPLOAD_MEMORY_MB", "192"))
UPLOADS = 3
PEAK_LIMIT = 64 * MIB  # peak RSS growth of the worker during one upload
KEPT_LIMIT = 24 * MIB  # RSS after the last upload over RSS after the first


@pytest.fixture
def account(transactional_db: Any) -> tuple[Workspace, str]:
    user = User.objects.create_user(email="memory@example.org", password="pw-memory-upload-1")
    workspace = services.workspace_create(user=user, name="Big uploads")
    _token, key = services.api_token_create(user=user, name="memory")
    return workspace, key


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    path = tmp_path_factory.mktemp("memory") / "body.bin"
    rng = random.Random(14)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(BODY_MIB):
            block = rng.randbytes(MIB)
            digest.update(block)
            fh.write(block)
    yield path, digest.hexdigest()
    path.unlink(missing_ok=True)


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


# How each way of serving is started (gunicorn_server's arguments).
SERVED: dict[str, dict[str, Any]] = {
    "wsgi": {},
    "asgi": {"app": "config.asgi:application", "worker_class": "uvicorn_worker.UvicornWorker"},
}
# Bytes the worker may write per byte of body: once, into the local file or the bucket's socket.
WRITES_PER_BYTE = {"local": 1.0, "bucket": 1.0}
WRITES_SLACK = 0.25  # (logs, the database, the warm-up)


def proc_io(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/io")


def upload_three_times(
    workdir: Path,
    env: dict[str, str],
    account: tuple[Workspace, str],
    body: tuple[Path, str],
    served: str = "wsgi",
) -> list[tuple[int, int, int, int]]:
    """(peak growth, RSS before, RSS after, bytes written) of the single worker for each
    upload, in bytes."""
    workspace, key = account
    path, sha256 = body
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/octet-stream"}
    figures = []
    with (
        gunicorn_server(workdir, workers=1, extra_env=env, **SERVED[served]) as server,
        session() as http,
    ):
        (worker,) = server.workers()

        def put(name: str, data: Any, length: int) -> dict[str, Any]:
            response = http.put(
                f"{server.base_url}/api/files/upload/",
                params={"workspace": str(workspace.pk), "name": name},
                data=data,
                headers={**headers, "Content-Length": str(length)},
                timeout=(10, 600),
            )
            assert response.status_code == 201, response.text[:2000]
            created: dict[str, Any] = response.json()
            return created

        put("warm.bin", b"w" * MIB, MIB)
        for n in range(UPLOADS):
            before = proc_status_kib(worker.pid, "VmRSS") * 1024
            written = proc_io(worker.pid, "wchar")
            with RssSampler(server, interval=0.02) as sampler, open(path, "rb") as fh:
                created = put(f"big-{n}.bin", fh, path.stat().st_size)
            written = proc_io(worker.pid, "wchar") - written
            assert (created["size"], created["sha256"]) == (path.stat().st_size, sha256)
            after = proc_status_kib(worker.pid, "VmRSS") * 1024
            # VmHWM is the peak since the process started: it bounds what sampling missed.
            peak = max(sampler.peak[worker.pid], proc_status_kib(worker.pid, "VmHWM") * 1024)
            figures.append((peak - before, before, after, written))
    return figures


def check(figures: list[tuple[int, int, int, int]], where: str, destination: str) -> None:
    shown = "; ".join(
        f"{b / MIB:.0f} -> peak +{g / MIB:.0f} -> {a / MIB:.0f} MiB, wrote {w / MIB:.0f} MiB"
        for g, b, a, w in figures
    )
    print(f"\n[{where}] worker RSS per {BODY_MIB} MiB upload: {shown}")
    # VmHWM never goes down, so later uploads are held to the first's high-water mark plus
    # the limit: the bound on the peak of every upload is against the RSS before the first.
    first_before = figures[0][1]
    writes_limit = (WRITES_PER_BYTE[destination] + WRITES_SLACK) * BODY_MIB * MIB
    assert max(w for *_, w in figures) < writes_limit, (
        f"{where}: the worker wrote more than {writes_limit / MIB:.0f} MiB for a "
        f"{BODY_MIB} MiB body: the body was written to disk before the view read it ({shown})"
    )
    assert max(g + b for g, b, _, _ in figures) - first_before < PEAK_LIMIT, (
        f"{where}: the worker's RSS peaked more than {PEAK_LIMIT // MIB} MiB over its RSS "
        f"before the uploads ({shown})"
    )
    kept = figures[-1][2] - figures[0][2]
    assert kept < KEPT_LIMIT, f"{where}: the worker kept {kept / MIB:.0f} MiB more ({shown})"


@pytest.mark.parametrize("served", list(SERVED))
def test_upload_into_a_bucket_keeps_memory_bounded(
    served: str,
    seaweedfs: S3Server,
    account: tuple[Workspace, str],
    body: tuple[Path, str],
    tmp_path: Path,
) -> None:
    bucket = f"memory-{uuid.uuid4().hex[:8]}"
    seaweedfs.boto3_client().create_bucket(Bucket=bucket)
    env = {
        "FERRY_STORAGE_LOCATION": f"s3://{bucket}/api",
        "FERRY_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "FERRY_S3_REGION": "us-east-1",
        "FERRY_S3_ACCESS_KEY_ID": seaweedfs.access_key_id,
        "FERRY_S3_SECRET_ACCESS_KEY": seaweedfs.secret_access_key,
    }
    figures = upload_three_times(tmp_path / "web", env, account, body, served)
    check(figures, f"bucket, {served}", "bucket")


@pytest.mark.parametrize("served", list(SERVED))
def test_upload_into_local_storage_keeps_memory_bounded(
    served: str, account: tuple[Workspace, str], body: tuple[Path, str], tmp_path: Path
) -> None:
    figures = upload_three_times(tmp_path / "web", {}, account, body, served)
    check(figures, f"local, {served}", "local")


ARENAS_SCRIPT = """
import ctypes, sys, threading
if sys.argv[1] == "ferry":
    import config  # what every Ferry process imports first (settings, wsgi, asgi, manage.py)
barrier = threading.Barrier(8)
def work():
    kept = bytearray(300_000)  # above obmalloc's limit: from this thread's malloc arena
    barrier.wait(timeout=30)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
"""


def malloc_arenas(tmp_path: Path, mode: str) -> int:
    """glibc arenas of a fresh Python process (without MALLOC_ARENA_MAX in its environment)
    after 8 threads allocated at once; ``mode`` "ferry" imports Ferry's config package first."""
    report = tmp_path / f"malloc-{mode}.xml"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    subprocess.run(
        [sys.executable, "-c", ARENAS_SCRIPT, mode, str(report)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        check=True,
        timeout=60,
    )
    return report.read_text().count("<heap nr=")


def test_every_ferry_process_limits_malloc_arenas(tmp_path: Path) -> None:
    assert malloc_arenas(tmp_path, "plain") > 2  # glibc's default: up to 8 per core
    assert malloc_arenas(tmp_path, "ferry") <= 2
