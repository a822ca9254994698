"""Buckets: a bucket-to-bucket relocation and a local -> S3 upload through Ferry, against plain
boto3 doing the same on the same S3 server in the same run.

    FERRY_BENCH_BUCKET_MB=1024       size of the object (MiB)
    FERRY_BENCH_REPEAT=3             runs of each operation (the median is reported)
    FERRY_BENCH_S3=seaweedfs         which S3 servers: seaweedfs and/or moto (comma-separated).
                                     moto is opt-in: its multipart copy (what boto3's managed
                                     copy does) takes about 2 minutes per GiB
    FERRY_BENCH_API_UPLOAD=1         also upload through PUT /api/files/upload/ on gunicorn

Relocation (goal: no object byte passes through Ferry's process): Ferry's verified server-side
``BucketClient.copy(src, dst)`` against boto3's managed ``copy`` (multipart copy in 8 MiB parts,
10 threads) and a single ``copy_object``. "process I/O" is the growth of this process's
``rchar + wchar`` (every byte read or written through a syscall: files and sockets) during the
operation.

Upload (goal: throughput at least 0.8 of ``boto3 upload_file``): what an API upload does once
the body is spooled (``storage.save_to_location``: the location's django-storages backend saves
the spooled file, then the object is checked; the spool is written before the clock starts),
Ferry's other streamed path (``BucketClient.put_stream`` with the sha256 known: local inputs
staged for Cromwell, streamed copies), and the whole HTTP path (gunicorn, one sync worker,
site bucket from FERRY_STORAGE_LOCATION: the body is spooled to disk while hashed, then saved to
the bucket). The peak RSS growth is this process's (or the gunicorn worker's) highest RSS
during the run over its RSS just before.

Memory of API uploads (goal: the gunicorn worker's peak RSS growth < 64 MiB per upload and
nothing kept across uploads, into local storage and a bucket; throughput at least 0.8 of a bare
streaming receiver doing the same reading, hashing and spooling, tests/benchmarks/
bare_receiver.py, on the same gunicorn in the same run): FERRY_BENCH_REPEAT uploads in a row.

Operations alternate within each round so that the machine's noise hits them alike. Only
correctness and the "no bytes through Ferry" bound are asserted; the figures are printed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from api import services, storage
from api.models import File, User, Workspace
from api.storage import buckets, locations
from api.storage.uploads import SpooledUpload
from tests.harness.buckets import S3Server

from .gunicorn_server import MIB, RssSampler, gunicorn_server
from .gunicorn_server import session as http_session
from .reporting import env_number, show

pytest_plugins = ["tests.harness.buckets"]

SERVERS = ("seaweedfs", "moto")
RATIO_GOAL = 0.8
COPY_IO_LIMIT = MIB  # bytes through Ferry's process while it relocates an object
TIMEOUT = (10, 1800)
CONTENT_TYPE = "application/octet-stream"


def object_mib() -> int:
    return int(env_number("FERRY_BENCH_BUCKET_MB", 1024))


def repeats() -> int:
    return int(env_number("FERRY_BENCH_REPEAT", 3))


def selected_servers() -> list[str]:
    raw = os.environ.get("FERRY_BENCH_S3", "").strip()
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else ["seaweedfs"]


def api_upload_enabled() -> bool:
    return os.environ.get("FERRY_BENCH_API_UPLOAD", "1").strip().lower() not in ("0", "false")


def mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


# ------------------------------------------------------------------------------- measuring


@dataclass
class Run:
    seconds: float
    io_bytes: int  # rchar + wchar growth of the measured process
    rss_growth: int
    cpu_seconds: float


@dataclass
class Measured:
    operation: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def io_bytes(self) -> int:
        return max(r.io_bytes for r in self.runs)

    @property
    def rss_growth(self) -> int:
        return max(r.rss_growth for r in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)


class ProcessMeter:
    """Wall time, syscall I/O (rchar + wchar), CPU time and peak RSS growth of this process
    while the ``with`` block runs. RSS is sampled every 20 ms in a thread when ``sample_rss``;
    each sample reads /proc (some 10 KiB of rchar in a few seconds), so measure I/O without."""

    def __init__(self, *, sample_rss: bool, interval: float = 0.02) -> None:
        self._process = psutil.Process()
        self._sample_rss = sample_rss
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="rss-meter", daemon=True)
        self.baseline_rss = 0
        self.peak_rss = 0

    def _io(self) -> int:
        counters = self._process.io_counters()
        return int(counters.read_chars + counters.write_chars)

    def _cpu(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _sample(self) -> None:
        self.peak_rss = max(self.peak_rss, int(self._process.memory_info().rss))

    def _sample_loop(self) -> None:
        while not self._done.wait(self._interval):
            self._sample()

    def __enter__(self) -> ProcessMeter:
        os.sync()
        self.baseline_rss = self.peak_rss = int(self._process.memory_info().rss)
        if self._sample_rss:
            self._thread.start()
        self._cpu_start = self._cpu()
        self._io_start = self._io()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.io_bytes = self._io() - self._io_start
        self.cpu_seconds = self._cpu() - self._cpu_start
        self._done.set()
        if self._sample_rss:
            self._thread.join(timeout=5)
        self._sample()

    def run(self) -> Run:
        return Run(self.seconds, self.io_bytes, self.peak_rss - self.baseline_rss, self.cpu_seconds)


def measured(action: Callable[[], Any], *, sample_rss: bool = True) -> tuple[Run, Any]:
    with ProcessMeter(sample_rss=sample_rss) as meter:
        result = action()
    return meter.run(), result


# ------------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class BigFile:
    path: Path
    size: int
    sha256: str


def write_random_file(path: Path, mib: int) -> str:
    """``mib`` MiB of random bytes (so no server can compress or deduplicate them); sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            block = os.urandom(MIB)
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big_file() -> Iterator[BigFile]:
    folder = Path(tempfile.mkdtemp(prefix="ferry-bench-buckets-"))
    try:
        mib = object_mib()
        path = folder / "big.bin"
        print(f"\n[bench buckets] writing {mib} MiB of random bytes to {path}", flush=True)
        sha256 = write_random_file(path, mib)
        yield BigFile(path, mib * MIB, sha256)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=SERVERS)
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    name = str(request.param)
    if name not in selected_servers():
        pytest.skip(f"{name} is not in FERRY_BENCH_S3")
    server: S3Server = request.getfixturevalue("moto_server" if name == "moto" else name)
    return server


def spooled(path: Path) -> SpooledUpload:
    """``path``'s bytes in a :class:`SpooledUpload`, as the API holds a received body."""
    upload = SpooledUpload(path.name, CONTENT_TYPE)
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            upload.append(block)
    return upload.finish()


def new_bucket(server: S3Server, purpose: str) -> str:
    name = f"bench-{purpose}-{uuid.uuid4().hex[:8]}"
    server.boto3_client().create_bucket(Bucket=name)
    return name


def empty_bucket(server: S3Server, bucket: str) -> None:
    s3 = server.boto3_client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def bench_workspace(bench_user: User) -> Workspace:
    return services.workspace_create(user=bench_user, name="Bucket benchmark")


# ------------------------------------------------------------------------------- relocation


def test_relocation_within_the_s3_server(s3_server: S3Server, big_file: BigFile) -> None:
    s3 = s3_server.boto3_client()
    ferry = buckets.client_for("s3", s3_server.config())
    source_bucket = new_bucket(s3_server, "src")
    target_bucket = new_bucket(s3_server, "dst")
    source = buckets.ObjectRef("s3", source_bucket, "results/big.bin")
    # As Ferry stores objects: the sha256 recorded as metadata (what its copy verifies against).
    s3.upload_file(
        str(big_file.path),
        source_bucket,
        source.key,
        ExtraArgs={"Metadata": {"sha256": big_file.sha256}, "ContentType": CONTENT_TYPE},
    )
    copy_source = {"Bucket": source_bucket, "Key": source.key}
    verified_by: set[str] = set()

    def boto3_managed_copy(key: str) -> None:
        s3.copy(copy_source, target_bucket, key)

    def boto3_copy_object(key: str) -> None:
        s3.copy_object(CopySource=copy_source, Bucket=target_bucket, Key=key)

    def ferry_copy(key: str) -> None:
        info = ferry.copy(source, buckets.ObjectRef("s3", target_bucket, key))
        assert (info.size, info.sha256) == (big_file.size, big_file.sha256)
        verified_by.add("server sha256" if info.server_sha256 else "recorded sha256 and size")

    operations = {
        "boto3 s3.copy (managed, baseline)": boto3_managed_copy,
        "boto3 copy_object": boto3_copy_object,
        "Ferry BucketClient.copy (verified)": ferry_copy,
    }
    results = {name: Measured(name) for name in operations}
    try:
        ferry_copy("warm-up.bin")  # client creation, first connections
        for n in range(repeats()):
            for name, operation in operations.items():
                key = f"copy-{n}-{uuid.uuid4().hex[:6]}.bin"
                run, _ = measured(functools.partial(operation, key), sample_rss=False)
                results[name].runs.append(run)
                head = s3.head_object(Bucket=target_bucket, Key=key)
                assert head["ContentLength"] == big_file.size
                s3.delete_object(Bucket=target_bucket, Key=key)
    finally:
        empty_bucket(s3_server, target_bucket)
        empty_bucket(s3_server, source_bucket)

    ferry_run = results["Ferry BucketClient.copy (verified)"]
    baseline = results["boto3 s3.copy (managed, baseline)"]
    single = results["boto3 copy_object"]
    rows = []
    for m in results.values():
        rows.append(
            [
                m.operation,
                f"{m.seconds:.2f}",
                f"{mb_per_s(big_file.size, m.seconds):.0f}",
                f"{m.seconds / baseline.seconds:.2f}",
                f"{m.seconds / single.seconds:.2f}",
                f"{m.io_bytes / 1024:.1f}",
                f"{m.cpu_seconds:.2f}",
            ]
        )
    show(
        f"Relocation of a {object_mib()} MiB object bucket -> bucket on {s3_server.name} "
        f"({s3_server.endpoint_url}), median of {repeats()} runs; goal: ~0 bytes through "
        "Ferry's process (time ratios: seconds / seconds of the boto3 call; lower is faster)",
        [
            "operation",
            "seconds",
            "MB/s",
            "time / s3.copy",
            "time / copy_object",
            "process I/O KiB (max)",
            "CPU s",
        ],
        rows,
    )
    print(f"Ferry's copy verified by: {', '.join(sorted(verified_by))}")
    for m in results.values():
        print(f"{m.operation}: " + "; ".join(f"{r.seconds:.2f} s" for r in m.runs))
    assert ferry_run.io_bytes < COPY_IO_LIMIT, (
        f"{ferry_run.io_bytes} bytes passed through Ferry's process during a server-side copy"
    )


# ------------------------------------------------------------------------------- uploads


def gunicorn_env(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        "FERRY_STORAGE_LOCATION": f"s3://{bucket}/api",
        "FERRY_S3_ENDPOINT_URL": server.endpoint_url,
        "FERRY_S3_REGION": "us-east-1",
        "FERRY_S3_ACCESS_KEY_ID": server.access_key_id,
        "FERRY_S3_SECRET_ACCESS_KEY": server.secret_access_key,
    }


def test_upload_local_file_to_s3(
    s3_server: S3Server,
    big_file: BigFile,
    bench_user: User,
    api_key: str,
    bench_workspace: Workspace,
    settings: Any,
) -> None:
    s3 = s3_server.boto3_client()
    bucket = new_bucket(s3_server, "up")
    # The bucket as the site's storage location (in this process), as an API upload sees it.
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(s3_server.config()).items() if v is not None}
    }
    location = locations.site_location()
    size, sha256 = big_file.size, big_file.sha256

    def boto3_upload_file(key: str, _cleanup: contextlib.ExitStack) -> Callable[[], str]:
        def upload() -> str:
            s3.upload_file(str(big_file.path), bucket, key)
            return key

        return upload

    def ferry_put_stream(key: str, _cleanup: contextlib.ExitStack) -> Callable[[], str]:
        def upload() -> str:
            with open(big_file.path, "rb") as fh:
                ref = location.ref().child(key)
                info = location.client().put_stream(ref, fh, size, CONTENT_TYPE, sha256=sha256)
            assert (info.size, info.sha256) == (size, sha256)
            return ref.key

        return upload

    def ferry_save_to_location(key: str, cleanup: contextlib.ExitStack) -> Callable[[], str]:
        spool = spooled(big_file.path)  # what the API has received (not timed)
        cleanup.callback(spool.close)

        def upload() -> str:
            uri, info = storage.save_to_location(location, key, spool, CONTENT_TYPE)
            assert (info.size, info.sha256) == (size, sha256)
            return buckets.parse_uri(uri).key

        return upload

    operations: dict[str, Callable[[str, contextlib.ExitStack], Callable[[], str]]] = {
        "boto3 upload_file (baseline)": boto3_upload_file,
        "Ferry storage.save_to_location (API path)": ferry_save_to_location,
        "Ferry BucketClient.put_stream": ferry_put_stream,
    }
    results = {name: Measured(name) for name in operations}
    api = Measured("Ferry HTTP PUT /api/files/upload/ (gunicorn)")
    api_details: list[str] = []
    try:
        with open(big_file.path, "rb") as fh:  # warm-up: clients, connections, imports
            location.client().put_stream(location.ref().child("warm-up.bin"), fh, MIB, CONTENT_TYPE)
        for n in range(repeats()):
            for name, prepare in operations.items():
                with contextlib.ExitStack() as cleanup:
                    upload = prepare(f"up-{n}-{uuid.uuid4().hex[:6]}.bin", cleanup)
                    run, stored_key = measured(upload)
                results[name].runs.append(run)
                assert s3.head_object(Bucket=bucket, Key=stored_key)["ContentLength"] == size
                s3.delete_object(Bucket=bucket, Key=stored_key)
        if api_upload_enabled():
            api_bucket = new_bucket(s3_server, "api")
            try:
                upload_through_api(
                    s3_server, api_bucket, big_file, api_key, bench_workspace, api, api_details
                )
            finally:
                empty_bucket(s3_server, api_bucket)
    finally:
        empty_bucket(s3_server, bucket)

    report_uploads(s3_server, big_file, list(results.values()), api, api_details)


def upload_through_api(
    server: S3Server,
    bucket: str,
    big_file: BigFile,
    key: str,
    workspace: Workspace,
    into: Measured,
    details: list[str],
) -> None:
    """PUT the file to a real gunicorn whose site storage is ``bucket``; measure each run."""
    scratch = Path(tempfile.mkdtemp(prefix="ferry-bench-api-"))
    headers = {"Authorization": f"Token {key}", "Content-Type": CONTENT_TYPE}
    try:
        with (
            gunicorn_server(scratch, workers=1, extra_env=gunicorn_env(server, bucket)) as gunicorn,
            http_session() as http,
        ):

            def put(name: str, path: Path, length: int) -> dict[str, Any]:
                with open(path, "rb") as fh:
                    response = http.put(
                        f"{gunicorn.base_url}/api/files/upload/",
                        params={"workspace": str(workspace.pk), "name": name},
                        data=fh,
                        headers={**headers, "Content-Length": str(length)},
                        timeout=TIMEOUT,
                    )
                assert response.status_code == 201, response.text[:2000]
                created: dict[str, Any] = response.json()
                return created

            def delete(file_id: str) -> None:
                gone = http.delete(
                    f"{gunicorn.base_url}/api/files/{file_id}/", headers=headers, timeout=60
                )
                assert gone.status_code == 204, gone.text[:500]

            warm = scratch / "warm.bin"
            warm.write_bytes(os.urandom(MIB))
            delete(put("warm.bin", warm, MIB)["id"])
            for n in range(repeats()):
                os.sync()
                with RssSampler(gunicorn) as sampler:
                    start = time.perf_counter()
                    created = put(f"big-{n}.bin", big_file.path, big_file.size)
                    seconds = time.perf_counter() - start
                assert created["storage_uri"].startswith(f"s3://{bucket}/api/")
                assert (created["size"], created["sha256"]) == (big_file.size, big_file.sha256)
                stored = File.objects.get(pk=created["id"])
                assert (stored.size, stored.sha256) == (big_file.size, big_file.sha256)
                into.runs.append(Run(seconds, 0, sampler.max_growth(), 0.0))
                details.append(
                    f"run {n + 1}: {seconds:.2f} s; worker RSS MiB "
                    + ", ".join(
                        f"{sampler.baseline[p] / MIB:.0f}->{sampler.peak[p] / MIB:.0f}"
                        for p in sorted(sampler.baseline)
                    )
                )
                delete(created["id"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report_uploads(
    server: S3Server,
    big_file: BigFile,
    results: list[Measured],
    api: Measured,
    api_details: list[str],
) -> None:
    baseline = results[0]
    base_rate = mb_per_s(big_file.size, baseline.seconds)
    rows = []
    for m in [*results, *([api] if api.runs else [])]:
        rate = mb_per_s(big_file.size, m.seconds)
        ratio = rate / base_rate
        rows.append(
            [
                m.operation,
                f"{m.seconds:.2f}",
                f"{rate:.0f}",
                f"{ratio:.2f}",
                "-" if m is baseline else ("yes" if ratio >= RATIO_GOAL else "no"),
                f"{m.rss_growth / MIB:.1f}",
                f"{m.cpu_seconds:.2f}" if m is not api else "-",
            ]
        )
    show(
        f"Upload of a local {object_mib()} MiB file to {server.name} ({server.endpoint_url}), "
        f"median of {repeats()} runs; goal: throughput ratio vs boto3 upload_file >= "
        f"{RATIO_GOAL}; RSS growth: this process (the gunicorn worker for HTTP), max over runs",
        ["operation", "seconds", "MB/s", "ratio", "goal met", "peak RSS growth MiB", "CPU s"],
        rows,
    )
    for m in results:
        print(f"{m.operation}: " + "; ".join(f"{r.seconds:.2f} s" for r in m.runs))
    for line in api_details:
        print(f"{api.operation} {line}")


# ------------------------------------------------------------------- API uploads: memory


MEMORY_PEAK_GOAL = 64 * MIB  # the worker's peak RSS growth during one upload


@dataclass
class WorkerUpload:
    seconds: float
    before: int  # the worker's RSS just before the upload
    peak: int  # its highest RSS during it
    after: int  # and just after
    cpu_seconds: float  # the worker's CPU time (user + system) during it


def worker_upload(server: Any, http: Any, url: str, path: Path, headers: dict[str, str]) -> Any:
    """PUT ``path`` to ``url`` on ``server`` (one sync worker); its time and the worker's RSS."""
    (worker,) = server.workers()
    os.sync()
    before = int(worker.memory_info().rss)
    cpu_before = sum(worker.cpu_times()[:2])
    with RssSampler(server, interval=0.02) as sampler, open(path, "rb") as fh:
        start = time.perf_counter()
        response = http.put(
            url,
            data=fh,
            headers={**headers, "Content-Length": str(path.stat().st_size)},
            timeout=TIMEOUT,
        )
        seconds = time.perf_counter() - start
    assert response.status_code == 201, response.text[:2000]
    after = int(worker.memory_info().rss)
    cpu = sum(worker.cpu_times()[:2]) - cpu_before
    return WorkerUpload(seconds, before, sampler.peak[worker.pid], after, cpu), response.json()


def remove_bare_object(server: S3Server, uri: str) -> None:
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        server.boto3_client().delete_object(Bucket=bucket, Key=key)
    else:
        os.unlink(uri)


# How Ferry and the bare receiver are served: gunicorn's sync worker (WSGI), or a uvicorn
# worker (ASGI: config.asgi, as deploy/ and `make run` serve Ferry).
SERVED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "wsgi": ({}, {"app": "tests.benchmarks.bare_receiver:application"}),
    "asgi": (
        {"app": "config.asgi:application", "worker_class": "uvicorn_worker.UvicornWorker"},
        {
            "app": "tests.benchmarks.bare_receiver:asgi_application",
            "worker_class": "uvicorn_worker.UvicornWorker",
        },
    ),
}


@pytest.mark.parametrize("served", list(SERVED))
@pytest.mark.parametrize("destination", ["local", "bucket"])
def test_api_upload_memory_against_a_bare_receiver(
    destination: str,
    served: str,
    seaweedfs: S3Server,
    big_file: BigFile,
    api_key: str,
    bench_workspace: Workspace,
) -> None:
    """PUT /api/files/upload/ on gunicorn (one sync worker, or one uvicorn worker serving
    config.asgi as deployed; started as the benchmark starts it: no MALLOC_ARENA_MAX in its environment unless yours has one), FERRY_BENCH_REPEAT
    uploads of the big file in a row, into local storage or a SeaweedFS bucket; against
    tests/benchmarks/bare_receiver.py (read + sha256 + spool, then rename or boto3
    upload_file) on the same gunicorn, alternating. Goals: the worker's peak RSS growth per
    upload < 64 MiB, no RSS kept from one upload to the next, throughput >= 0.8x the bare one."""
    scratch = Path(tempfile.mkdtemp(prefix="ferry-bench-memory-"))
    bucket = new_bucket(seaweedfs, "mem") if destination == "bucket" else ""
    env = gunicorn_env(seaweedfs, bucket) if bucket else {}
    bare_env = {**env, "BARE_DESTINATION": f"s3://{bucket}/bare" if bucket else ""}
    if not bucket:
        (scratch / "bare-stored").mkdir()
        bare_env["BARE_DESTINATION"] = f"file://{scratch / 'bare-stored'}"
    headers = {"Authorization": f"Token {api_key}", "Content-Type": CONTENT_TYPE}
    runs: dict[str, list[WorkerUpload]] = {"Ferry": [], "bare receiver": []}
    try:
        with (
            gunicorn_server(
                scratch / "ferry", workers=1, extra_env=env, **SERVED[served][0]
            ) as ferry,
            gunicorn_server(
                scratch / "bare", workers=1, extra_env=bare_env, **SERVED[served][1]
            ) as bare,
            http_session() as http,
        ):
            ferry_url = (
                f"{ferry.base_url}/api/files/upload/?workspace={bench_workspace.pk}&name=big.bin"
            )
            bare_url = f"{bare.base_url}/upload"
            warm = scratch / "warm.bin"
            warm.write_bytes(os.urandom(MIB))
            worker_upload(ferry, http, ferry_url, warm, headers)
            worker_upload(bare, http, bare_url, warm, headers)
            for _ in range(repeats()):
                for name, server, url in (
                    ("Ferry", ferry, ferry_url),
                    ("bare receiver", bare, bare_url),
                ):
                    run, created = worker_upload(server, http, url, big_file.path, headers)
                    assert (created["size"], created["sha256"]) == (big_file.size, big_file.sha256)
                    runs[name].append(run)
                    # Both remove what they stored before the next upload: writing into
                    # page cache that a deleted file just freed costs far less system time.
                    if name == "bare receiver":
                        remove_bare_object(seaweedfs, created["storage_uri"])
                    else:
                        gone = http.delete(
                            f"{ferry.base_url}/api/files/{created['id']}/",
                            headers=headers,
                            timeout=60,
                        )
                        assert gone.status_code == 204, gone.text[:500]
    finally:
        if bucket:
            empty_bucket(seaweedfs, bucket)
        shutil.rmtree(scratch, ignore_errors=True)

    bare_seconds = statistics.median(r.seconds for r in runs["bare receiver"])
    rows = []
    for name, measured_runs in runs.items():
        seconds = statistics.median(r.seconds for r in measured_runs)
        first = measured_runs[0].before
        peak_growth = max(r.peak for r in measured_runs) - first
        kept = measured_runs[-1].after - measured_runs[0].after
        rows.append(
            [
                name,
                f"{seconds:.2f}",
                f"{mb_per_s(big_file.size, seconds):.0f}",
                f"{bare_seconds / seconds:.2f}",
                f"{statistics.median(r.cpu_seconds for r in measured_runs):.2f}",
                " | ".join(
                    f"{r.before / MIB:.0f}>{r.peak / MIB:.0f}>{r.after / MIB:.0f}"
                    for r in measured_runs
                ),
                f"{peak_growth / MIB:.0f}",
                f"{kept / MIB:+.0f}",
            ]
        )
    ferry_runs = runs["Ferry"]
    ferry_ratio = bare_seconds / statistics.median(r.seconds for r in ferry_runs)
    ferry_peak = max(r.peak for r in ferry_runs) - ferry_runs[0].before
    show(
        f"PUT /api/files/upload/ of {object_mib()} MiB x {repeats()} into "
        f"{'a SeaweedFS bucket' if bucket else 'local storage'} on gunicorn (1 "
        f"{'sync worker' if served == 'wsgi' else 'uvicorn worker, ASGI'}, "
        f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset')} in the environment); "
        f"goals: throughput ratio vs the bare receiver >= {RATIO_GOAL} "
        f"({'met' if ferry_ratio >= RATIO_GOAL else 'NOT met'}), peak RSS growth < "
        f"{MEMORY_PEAK_GOAL // MIB} MiB ({'met' if ferry_peak < MEMORY_PEAK_GOAL else 'NOT met'}),"
        " nothing kept across uploads",
        [
            "receiver",
            "seconds (median)",
            "MB/s",
            "ratio vs bare",
            "worker CPU s",
            "worker RSS MiB before>peak>after, per upload",
            "peak growth MiB",
            "kept last-first MiB",
        ],
        rows,
    )
