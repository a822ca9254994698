"""Uploading and downloading a big file through a real gunicorn, against `cp` of the same file.

    FERRY_BENCH_FILE_MB=2048      size of the file (MiB)
    FERRY_BENCH_MULTIPART=0       skip the multipart upload
    FERRY_BENCH_REPEAT=3          runs of cp and of each transfer (the median is reported)

Goals: a worker's peak RSS grows by less than 64 MiB during a transfer (the bytes are streamed,
never held in memory), and every transfer reaches at least 0.8 of the throughput of `cp`.
Only correctness is asserted; the figures are printed (run with -s).

Every timed operation (each `cp` run and each transfer) starts the same way: ``os.sync()``, then
a scratch file as big as the test file is written and deleted, so that none of them inherits
dirty pages from the one before, and each can reuse freshly freed page cache. On VMs that back
guest memory lazily, writing into memory the guest has not touched recently costs seconds of
system time per GiB (250 MB/s instead of 2.5 GB/s for a plain write); this still makes single
runs noisy, hence the repetitions and the medians. The per-run lines below the table give the
CPU time of the gunicorn workers and of the client, which are much less noisy than wall time.
"""

from __future__ import annotations

import hashlib
import os
import resource
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from api import services
from api.models import File, User, Workspace

from .gunicorn_server import (
    MIB,
    GunicornServer,
    RssSampler,
    gunicorn_server,
    on_each_worker,
    raw_request,
)
from .gunicorn_server import session as http_session
from .reporting import env_number, show

RSS_GOAL_MIB = 64
RATIO_GOAL = 0.8
# Connect and read timeouts for requests: bounded, but far above any plausible transfer pause.
TIMEOUT = (10, 900)


def file_mib() -> int:
    return int(env_number("FERRY_BENCH_FILE_MB", 2048))


def multipart_enabled() -> bool:
    return os.environ.get("FERRY_BENCH_MULTIPART", "1").strip().lower() not in ("0", "false", "no")


def write_random_file(path: Path, mib: int) -> str:
    """Write ``mib`` MiB of random bytes (no holes); return their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            block = os.urandom(MIB)
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


class MultipartBody:
    """A multipart/form-data body streamed from a file with a known length.

    ``requests`` would build ``files=`` bodies in memory; this is read in blocks instead, and
    its ``__len__`` gives requests the Content-Length.
    """

    def __init__(self, fields: dict[str, str], file_field: str, path: Path, filename: str):
        self.boundary = f"ferry-bench-{uuid.uuid4().hex}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        parts.append(
            f"--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="{file_field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        self._head = "".join(parts).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._size = path.stat().st_size
        # Closed by close() / the context manager.
        self._fh = open(path, "rb")  # noqa: SIM115
        self._pos = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (fewer at the end of a segment); b"" at the end."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(MIB), b""))
        head_end = len(self._head)
        file_end = head_end + self._size
        if self._pos < head_end:
            data = self._head[self._pos : self._pos + size]
        elif self._pos < file_end:
            data = self._fh.read(min(size, file_end - self._pos))
            if not data:
                raise OSError("the file shrank while it was being sent")
        else:
            offset = self._pos - file_end
            data = self._tail[offset : offset + size]
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> MultipartBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def warm_up(server: GunicornServer, key: str, workspace: Workspace, scratch: Path) -> None:
    """Run every measured code path once on every worker (imports, first queries, buffers)."""
    small = scratch / "warm.bin"
    data = os.urandom(MIB)
    small.write_bytes(data)
    with MultipartBody({"workspace": str(workspace.pk)}, "file", small, "warm.bin") as body:
        multipart = body.read()
        multipart_type = body.content_type
    for round_no in range(2):
        put = raw_request(
            server,
            "PUT",
            f"/api/files/upload/?workspace={workspace.pk}&name=warm-{round_no}.bin",
            key,
            data,
        )
        created = on_each_worker(server, put)
        assert [r.status for r in created] == [201] * len(created), created[0].body[:500]
        file_id = created[0].json()["id"]
        downloads = on_each_worker(
            server, raw_request(server, "GET", f"/api/files/{file_id}/download/", key)
        )
        assert all(r.status == 200 and r.body == data for r in downloads)
        posted = on_each_worker(
            server, raw_request(server, "POST", "/api/files/", key, multipart, multipart_type)
        )
        assert [r.status for r in posted] == [201] * len(posted), posted[0].body[:500]
        listed = on_each_worker(
            server, raw_request(server, "GET", f"/api/files/?workspace={workspace.pk}", key)
        )
        assert all(r.status == 200 for r in listed)
    small.unlink()


@dataclass
class Run:
    seconds: float
    rss_growth: int
    detail: str


@dataclass
class Measured:
    operation: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss_growth(self) -> int:
        return max(r.rss_growth for r in self.runs)


def level_page_cache(scratch: Path, size: int) -> float:
    """Flush dirty pages, then write and delete ``size`` bytes so the next writer can reuse
    freshly freed page cache (see the module docstring). Returns the scratch write rate, MB/s."""
    os.sync()
    block = b"\xa5" * MIB
    start = time.perf_counter()
    with open(scratch, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)
    rate = size / 1e6 / (time.perf_counter() - start)
    scratch.unlink()
    return rate


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def workers_cpu(server: GunicornServer) -> tuple[float, float]:
    user = system = 0.0
    for worker in server.workers():
        times = worker.cpu_times()
        user += times.user
        system += times.system
    return user, system


def timed_cp(src: Path, dst: Path, scratch: Path) -> float:
    level_page_cache(scratch, src.stat().st_size)
    start = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    seconds = time.perf_counter() - start
    dst.unlink()
    return seconds


def measure(server: GunicornServer, action: Callable[[], None], scratch: Path, size: int) -> Run:
    """Run ``action`` once while sampling the workers' RSS and CPU time."""
    pretouch = level_page_cache(scratch, size)
    cpu_user, cpu_sys = workers_cpu(server)
    cpu_client = client_cpu()
    with RssSampler(server) as sampler:
        start = time.perf_counter()
        action()
        seconds = time.perf_counter() - start
    cpu_client = client_cpu() - cpu_client
    after_user, after_sys = workers_cpu(server)
    rss = ", ".join(
        f"{sampler.baseline[pid] / MIB:.0f}->{sampler.peak[pid] / MIB:.0f}"
        for pid in sorted(sampler.baseline)
    )
    detail = (
        f"{seconds:.2f} s = {mb_per_s(size, seconds):.0f} MB/s; workers CPU "
        f"user {after_user - cpu_user:.2f} s + sys {after_sys - cpu_sys:.2f} s; "
        f"client CPU {cpu_client:.2f} s; workers RSS MiB {rss} ({sampler.samples} samples); "
        f"scratch write {pretouch:.0f} MB/s"
    )
    return Run(seconds, sampler.max_growth(), detail)


def mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


@pytest.fixture
def workspace(bench_user: User) -> Workspace:
    return services.workspace_create(user=bench_user, name="Benchmark")


def test_big_file_upload_and_download(
    bench_dir: Path, bench_user: User, api_key: str, workspace: Workspace
) -> None:
    mib = file_mib()
    size = mib * MIB
    repeat = int(env_number("FERRY_BENCH_REPEAT", 3))
    source = bench_dir / "source.bin"
    downloaded = bench_dir / "downloaded.bin"
    scratch = bench_dir / "scratch.bin"
    print(f"\n[bench files] writing {mib} MiB of random bytes to {source}", flush=True)
    source_sha = write_random_file(source, mib)

    cp_runs = [timed_cp(source, bench_dir / "cp-copy.bin", scratch) for _ in range(repeat)]
    put = Measured("upload: PUT raw body")
    get = Measured("download: GET /api/files/<id>/download/")
    post = Measured("upload: POST multipart")

    with gunicorn_server(bench_dir / "server", workers=2) as server:
        warm_up(server, api_key, workspace, bench_dir)
        headers = {"Authorization": f"Token {api_key}"}
        created: list[dict[str, Any]] = []

        def put_upload() -> None:
            with http_session() as http, open(source, "rb") as fh:
                response = http.put(
                    f"{server.base_url}/api/files/upload/",
                    params={"workspace": str(workspace.pk), "name": "big.bin"},
                    data=fh,
                    headers={
                        **headers,
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                    timeout=TIMEOUT,
                )
            assert response.status_code == 201, response.text[:2000]
            created.append(response.json())

        def download() -> None:
            url = f"{server.base_url}/api/files/{created[0]['id']}/download/"
            with (
                http_session() as http,
                http.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response,
            ):
                assert response.status_code == 200, response.text[:2000]
                assert int(response.headers["Content-Length"]) == size
                with open(downloaded, "wb") as out:
                    for block in response.iter_content(chunk_size=MIB):
                        out.write(block)

        def multipart_upload() -> None:
            with (
                http_session() as http,
                MultipartBody(
                    {"workspace": str(workspace.pk)}, "file", source, "big-multipart.bin"
                ) as body,
            ):
                response = http.post(
                    f"{server.base_url}/api/files/",
                    data=body,
                    headers={
                        **headers,
                        "Content-Type": body.content_type,
                        "Content-Length": str(len(body)),
                    },
                    timeout=TIMEOUT,
                )
            assert response.status_code == 201, response.text[:2000]
            created.append(response.json())

        def delete_file(file_id: str) -> None:
            with http_session() as http:
                gone = http.delete(
                    f"{server.base_url}/api/files/{file_id}/", headers=headers, timeout=60
                )
            assert gone.status_code == 204, gone.text[:500]

        def check_created() -> None:
            assert created[-1]["size"] == size
            assert created[-1]["sha256"] == source_sha
            stored = File.objects.get(pk=created[-1]["id"])
            assert (stored.size, stored.sha256) == (size, source_sha)

        for n in range(repeat):
            put.runs.append(measure(server, put_upload, scratch, size))
            check_created()
            if n:  # the first upload is kept for the downloads
                delete_file(created.pop()["id"])
        for _ in range(repeat):
            get.runs.append(measure(server, download, scratch, size))
            assert downloaded.stat().st_size == size
            assert sha256_of(downloaded) == source_sha, "the downloaded bytes differ"
            downloaded.unlink()
        if multipart_enabled():
            for _ in range(repeat):
                post.runs.append(measure(server, multipart_upload, scratch, size))
                check_created()
                delete_file(created.pop()["id"])
        delete_file(created.pop()["id"])
        assert not File.objects.filter(workspace=workspace, size=size).exists()
        log_tail = server.log_tail(15)

    source.unlink()
    report(mib, cp_runs, [m for m in (put, get, post) if m.runs])
    if log_tail.strip():
        print(f"\ngunicorn log (last lines):\n{log_tail}")


def report(mib: int, cp_runs: list[float], results: list[Measured]) -> None:
    size = mib * MIB
    cp_seconds = statistics.median(cp_runs)
    cp_rate = mb_per_s(size, cp_seconds)
    rows: list[list[object]] = [["cp src dst (baseline)", f"{cp_rate:.0f}", "1.00", "-", "-"]]
    for m in results:
        rate = mb_per_s(size, m.seconds)
        ratio = rate / cp_rate
        growth_mib = m.rss_growth / MIB
        misses = []
        if ratio < RATIO_GOAL:
            misses.append(f"ratio < {RATIO_GOAL}")
        if growth_mib >= RSS_GOAL_MIB:
            misses.append(f"RSS >= {RSS_GOAL_MIB} MiB")
        rows.append(
            [
                m.operation,
                f"{rate:.0f}",
                f"{ratio:.2f}",
                f"{growth_mib:.1f}",
                "yes" if not misses else "no (" + ", ".join(misses) + ")",
            ]
        )
    show(
        f"Big file through gunicorn (2 sync workers, client: requests), {mib} MiB = "
        f"{size / 1e6:.0f} MB, median of {len(cp_runs)} runs; goals: ratio vs cp >= "
        f"{RATIO_GOAL}, peak RSS growth of any worker < {RSS_GOAL_MIB} MiB (max over runs)",
        ["operation", "MB/s", "ratio vs cp", "peak RSS growth MiB", "goal met"],
        rows,
    )
    print("cp runs: " + "; ".join(f"{s:.2f} s = {mb_per_s(size, s):.0f} MB/s" for s in cp_runs))
    for m in results:
        print(f"{m.operation}:")
        for n, run in enumerate(m.runs, 1):
            print(f"  run {n}: {run.detail}")
