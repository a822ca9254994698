"""A worker killed between a job's ending and the cleanup after its run (the ending committed,
the container not yet removed) leaves ``cleanup_pending`` set: the reconciler cleans up, with a
real Docker engine and container; never while a live worker holds the job's finalize lease."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
from django.utils import timezone

from api.models import User, Workspace
from executors import dummy, registry
from executors.docker import DockerExecutor, container_name
from operations import leases
from operations.models import Job
from operations.runner import cleanups_due, finalize_job, reconcile
from operations.states import JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import make_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def alias(settings: Any, tmp_path: Path) -> Iterator[str]:
    ensure_docker()
    image = ensure_busybox_image()
    name = f"test-sweep-{uuid.uuid4().hex[:8]}"
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        name: {
            "BACKEND": "executors.docker.DockerExecutor",
            "OPTIONS": {
                "work_root": str(tmp_path / "work"),
                "defaults": {"memory_mb": 256, "cpus": 1.0, "pids": 64, "timeout_s": 60},
                "ceilings": {"memory_mb": 1024, "cpus": 2.0, "pids": 256, "timeout_s": 600},
            },
        },
    }
    settings.FERRY_TEST_IMAGE = image
    yield name
    client = docker.from_env()
    for container in client.containers.list(
        all=True, sparse=True, filters={"label": f"ferry.executor={name}"}
    ):
        container.remove(force=True)
    client.close()


def _left_by_a_killed_worker(
    alias: str, users: dict[str, User], workspace: Workspace, settings: Any
) -> Job:
    """A job whose run exited and whose ending was committed, as a worker killed right after
    the commit leaves it: its container and work dir are still there."""
    job = Job.objects.create(
        operation=make_operation("sweep", "true"),
        workspace=workspace,
        owner=users["editor"],
        executor=alias,
        run_spec={"image": settings.FERRY_TEST_IMAGE, "command": "echo hi > out.txt"},
        status=JobStatus.SUBMITTED,
    )
    executor = registry.get_executor(alias)
    assert isinstance(executor, DockerExecutor)
    executor.submit(job)
    client = docker.from_env()
    try:
        client.containers.get(container_name(job)).wait(timeout=30)
    finally:
        client.close()
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, cleanup_pending=True, updated_at=long_ago, finished_at=long_ago
    )
    return job


def _container_exists(job: Job) -> bool:
    client = docker.from_env()
    try:
        return bool(client.containers.list(all=True, filters={"name": container_name(job)}))
    finally:
        client.close()


def test_the_reconciler_removes_what_a_killed_worker_left(
    alias: str, users: dict[str, User], workspace: Workspace, settings: Any
) -> None:
    job = _left_by_a_killed_worker(alias, users, workspace, settings)
    workdir = registry.get_executor(alias).workdir_for(job.pk)
    assert workdir is not None
    assert workdir.exists()
    assert _container_exists(job)

    reconcile()  # tasks run inline in tests: the cleanup task runs here

    job.refresh_from_db()
    assert not _container_exists(job)
    assert not workdir.exists()
    assert job.cleanup_pending is False
    assert job.status == JobStatus.SUCCEEDED  # the ending itself is untouched


def test_a_held_finalize_lease_keeps_the_sweeper_off(
    alias: str, users: dict[str, User], workspace: Workspace, settings: Any
) -> None:
    job = _left_by_a_killed_worker(alias, users, workspace, settings)
    assert leases.acquire(f"finalize:{job.pk}", "someone-alive")

    reconcile()

    job.refresh_from_db()
    assert _container_exists(job)
    assert job.cleanup_pending is True


def test_a_recent_ending_is_left_to_the_worker_that_is_at_it(
    alias: str, users: dict[str, User], workspace: Workspace, settings: Any
) -> None:
    job = _left_by_a_killed_worker(alias, users, workspace, settings)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now())
    assert cleanups_due()  # the poll loop keeps going for it

    reconcile()

    assert _container_exists(job)


def test_an_executor_no_longer_configured_is_given_up_on(
    users: dict[str, User], workspace: Workspace
) -> None:
    long_ago = timezone.now() - timedelta(minutes=5)
    job = Job.objects.create(
        operation=make_operation("sweep-gone", "true"),
        workspace=workspace,
        owner=users["editor"],
        executor="removed-from-settings",
        status=JobStatus.FAILED,
        cleanup_pending=True,
    )
    Job.objects.filter(pk=job.pk).update(updated_at=long_ago)

    reconcile()

    job.refresh_from_db()
    assert job.cleanup_pending is False
    assert not cleanups_due()


def test_a_finalized_job_is_not_left_pending(users: dict[str, User], workspace: Workspace) -> None:
    dummy.reset()
    job = Job.objects.create(
        operation=make_operation("sweep-dummy", "true"),
        workspace=workspace,
        owner=users["editor"],
        executor="dummy",
        run_spec={"dummy": {"polls": 0, "values": {}}},
        status=JobStatus.FINALIZING,
        external_id="x",
    )
    executor = registry.get_executor("dummy")
    executor.submit(job)
    executor.poll([job])

    finalize_job(str(job.pk))

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.cleanup_pending is False
    dummy.reset()
