"""A seeded mix of jobs (Docker, miniwdl, test-Cromwell; quick, sleeping, failing) submitted
over HTTP, and the checks that a crash left nothing wrong behind: every job in the state it
should end in, one run per job, each result File once with its checksum, nothing left over."""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from rest_framework.test import APIClient

from api import storage
from api.models import File, FileStatus, Workspace
from operations.models import Event, Job, Operation
from operations.states import TERMINAL, JobStatus
from tests.harness.buckets import S3Server
from tests.harness.cromwell import CromwellServer
from tests.operations_fixtures import make_operation, make_wdl_operation

WDL_FIXTURES = Path(__file__).resolve().parents[1] / "wdl_fixtures"
CROMWELL = "cromwell:test"
SAID = {"said": {"type": "file", "file_type": "text", "description": ""}}
OUTPUTS_JSON = """'{"said": "said.txt"}'"""


@dataclass
class Planned:
    kind: str  # e.g. "docker-nap"
    operation: Operation
    executor: str | None  # None: the routing's default
    ends: JobStatus
    files: int  # result Files it leaves when it succeeds


def docker_operation(name: str, seconds: float) -> Operation:
    nap = f"sleep {seconds} && " if seconds else ""
    return make_operation(
        name, f"{nap}echo {name} > said.txt && echo {OUTPUTS_JSON} > outputs.json", outputs=SAID
    )


def plan_mix(seed: int, *, cromwell: bool, docker_copies: int = 1) -> list[Planned]:
    """~10 jobs of 0-4 s in a seeded order (more Docker ones with ``docker_copies``)."""
    quick, nap2, nap4 = (docker_operation(f"nap-{s}", s) for s in (0, 2, 4))
    boom = make_operation("boom", "echo failing on purpose >&2; exit 3")
    scatter = make_wdl_operation(WDL_FIXTURES / "scatter")
    failing = make_wdl_operation(WDL_FIXTURES / "failing_task")
    mix = docker_copies * [
        Planned("docker-quick", quick, None, JobStatus.SUCCEEDED, 1),
        Planned("docker-quick", quick, None, JobStatus.SUCCEEDED, 1),
        Planned("docker-nap", nap2, None, JobStatus.SUCCEEDED, 1),
        Planned("docker-nap", nap4, None, JobStatus.SUCCEEDED, 1),
        Planned("docker-failing", boom, None, JobStatus.FAILED, 0),
    ]
    mix += [
        Planned("miniwdl-scatter", scatter, "local-miniwdl", JobStatus.SUCCEEDED, 3),
        Planned("miniwdl-failing", failing, "local-miniwdl", JobStatus.FAILED, 0),
    ]
    if cromwell:
        mix += [
            Planned("cromwell-scatter", scatter, CROMWELL, JobStatus.SUCCEEDED, 3),
            Planned("cromwell-failing", failing, CROMWELL, JobStatus.FAILED, 0),
        ]
    random.Random(seed).shuffle(mix)
    return mix


def submit(client: APIClient, workspace: Workspace, planned: Planned) -> Job:
    body: dict[str, Any] = {
        "operation": str(planned.operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {},
    }
    if planned.executor:
        body["executor"] = planned.executor
    response = client.post("/api/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return Job.objects.get(pk=response.json()["id"])


def statuses(jobs: list[Job]) -> dict[str, str]:
    rows = Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("id", "status")
    return {str(job_id): str(status) for job_id, status in rows}


def all_terminal(jobs: list[Job]) -> bool:
    return all(JobStatus(s) in TERMINAL for s in statuses(jobs).values())


def worker_storage_env(moto_server: S3Server, cromwell_server: CromwellServer) -> dict[str, str]:
    """What a worker subprocess needs to store results where the test's settings do (the
    ``site_bucket`` fixture's S3 location) and read Cromwell's bucket."""
    return {
        "FERRY_STORAGE_LOCATION": settings.FERRY_STORAGE_LOCATION,
        "FERRY_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "FERRY_S3_REGION": "us-east-1",
        "FERRY_S3_ACCESS_KEY_ID": moto_server.access_key_id,
        "FERRY_S3_SECRET_ACCESS_KEY": moto_server.secret_access_key,
        "FERRY_IMPORT_LOCATIONS": f"s3://{cromwell_server.bucket}/",
    }


class ContainerCreates:
    """Counts the engine's container ``create`` events per Ferry job while it is open (a live
    stream: the engine keeps only its last few hundred events for later queries)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._client: Any = docker.from_env()
        self._stream = self._client.events(
            filters={"type": "container", "event": "create", "label": "ferry.job"}, decode=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream closed
            for event in self._stream:
                job_id = (event.get("Actor") or {}).get("Attributes", {}).get("ferry.job")
                if job_id:
                    self.counts[job_id] += 1

    def of(self, job: Job) -> int:
        return self.counts[str(job.pk)]

    def close(self) -> None:
        time.sleep(1.0)  # events still on their way
        self._stream.close()
        self._reader.join(timeout=10)
        self._client.close()

    def __enter__(self) -> ContainerCreates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def containers_left(jobs: list[Job]) -> list[str]:
    client: Any = docker.from_env()
    try:
        return [
            c.name
            for job in jobs
            for c in client.containers.list(all=True, filters={"label": f"ferry.job={job.pk}"})
        ]
    finally:
        client.close()


def cromwell_workflows(server: CromwellServer, job: Job) -> int:
    response = requests.get(
        f"{server.url}/api/workflows/v1/query",
        params={"label": f"ferry-job-id:{job.pk}"},
        timeout=30,
    )
    response.raise_for_status()
    return len(response.json()["results"])


def site_objects(moto_server: S3Server, workspace: Workspace) -> set[str]:
    """Every object under the workspace's prefix in the site bucket, as URIs."""
    bucket, prefix = settings.FERRY_STORAGE_LOCATION.removeprefix("s3://").split("/", 1)
    client = moto_server.boto3_client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/workspaces/{workspace.pk}/"
        )
        return {f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])}
    finally:
        client.close()


def check_outcome(
    jobs: list[Job], plan: list[Planned], creates: ContainerCreates, **servers: Any
) -> None:
    """Each job ended as planned, ran once, and left its result Files once each (checksums
    matching their objects); no transition happened twice."""
    for job, planned in zip(jobs, plan, strict=True):
        job.refresh_from_db()
        where = f"{planned.kind} job {job.pk}"
        assert job.status == planned.ends, (where, job.error_message, job.error_detail)
        moves = list(
            Event.objects.filter(job=job, kind="job.status").values_list("payload__to", flat=True)
        )
        assert len(moves) == len(set(moves)), (where, moves)  # no transition twice
        assert job.attempts == 1, (where, job.attempts)  # submitted once
        if job.executor == "local-docker":
            assert creates.of(job) == 1, (where, creates.of(job))  # one container
        if job.executor == CROMWELL:
            assert cromwell_workflows(servers["cromwell"], job) == 1, where  # one workflow
        produced = list(File.objects.filter(produced_by=job))
        expected = planned.files if planned.ends == JobStatus.SUCCEEDED else 0
        assert len(produced) == expected, (where, [f.name for f in produced])
        for result in produced:
            assert result.status == FileStatus.READY, where
            data = b"".join(storage.iter_object(result.storage_uri))
            assert len(data) == result.size, where
            if result.sha256:
                assert hashlib.sha256(data).hexdigest() == result.sha256, where
            if result.md5:
                assert hashlib.md5(data).hexdigest() == result.md5, where  # noqa: S324
            assert result.sha256 or result.md5, where


# Spool files of result copies a killed worker was making: removed by the spool sweeper
# (api.storage.spool) when the worker starts again. Live processes keep an empty folder each there.
SPOOL_SWEPT = True


def leftovers(jobs: list[Job], storage_root: Path, workspace: Workspace, **servers: Any) -> Any:
    """What a crash could leave behind: spool files, containers, objects no File stands for."""
    spool = sorted(
        str(p.relative_to(storage_root))
        for p in (storage_root / ".incoming").rglob("*")
        if p.is_file()
    )
    if spool and not SPOOL_SWEPT:
        print(f"spool files left (not asserted until the sweeper is merged): {spool}")
        spool = []
    objects = site_objects(servers["moto_server"], workspace) - set(
        File.objects.filter(workspace=workspace).values_list("storage_uri", flat=True)
    )
    return {"spool": spool, "containers": containers_left(jobs), "objects": sorted(objects)}


def nothing_left(
    jobs: list[Job], storage_root: Path, workspace: Workspace, moto_server: S3Server
) -> None:
    """Assert that nothing is left over, allowing a few seconds for cleanups under way."""
    deadline = time.monotonic() + 20
    while True:
        left = leftovers(jobs, storage_root, workspace, moto_server=moto_server)
        if not any(left.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not any(left.values()), left
