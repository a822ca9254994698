"""An executor that can't be reached is a state of the job (two columns), not a text prefix of
``error_detail`` parsed back; the notice users see is the same sentence as before."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from api.models import User, Workspace
from operations import runner
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_operation

NOTICE = re.compile(
    r"The Docker engine is not answering \(since \d\d:\d\d UTC\); "
    r"the job will continue when it is back\."
)
OLD_PREFIX = "executor unreachable since 2026-12-06 19:02:11 UTC: "


def running_job(workspace: Workspace, owner: User, executor: str) -> Job:
    return Job.objects.create(
        operation=make_operation("nap", "sleep 1"),
        workspace=workspace,
        owner=owner,
        executor=executor,
        external_id="ferry-job-that-has-no-container",
        run_spec={"image": "ferry/busybox:latest", "command": "sleep 1"},
        status=JobStatus.RUNNING,
    )


@pytest.mark.django_db
def test_an_unreachable_engine_is_a_column_cleared_when_it_answers(
    settings: Any,
    tmp_path: Path,
    users: dict[str, User],
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    down = {
        "BACKEND": "executors.docker.DockerExecutor",
        "OPTIONS": {
            **django_settings.EXECUTORS["local-docker"]["OPTIONS"],
            "base_url": f"unix://{tmp_path}/no-docker.sock",
        },
    }
    settings.EXECUTORS = {**django_settings.EXECUTORS, "docker-elsewhere": down}
    job = running_job(workspace, users["owner"], "docker-elsewhere")

    runner.poll_cycle()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.executor_unreachable_since is not None
    assert job.executor_unreachable_what == "The Docker engine"
    # For staff, the plain reason, and no text protocol in front of it.
    assert job.error_detail.startswith("The Docker engine is not answering. "), job.error_detail
    assert "socket does not exist" in job.error_detail
    shown = client_for("owner").get(f"/api/jobs/{job.pk}/").json()
    assert NOTICE.fullmatch(shown["executor_notice"]), shown["executor_notice"]
    assert shown["error_detail"] == ""  # staff only

    first = job.executor_unreachable_since
    runner.poll_cycle()
    job.refresh_from_db()
    assert job.executor_unreachable_since == first  # the notice says since when

    # The engine answers (the alias now reaches the machine's Docker): the notice goes.
    settings.EXECUTORS = {
        **django_settings.EXECUTORS,
        "docker-elsewhere": {
            **down,
            "OPTIONS": {**django_settings.EXECUTORS["local-docker"]["OPTIONS"]},
        },
    }
    runner.poll_cycle()
    job.refresh_from_db()
    assert job.executor_unreachable_since is None
    assert job.executor_unreachable_what == ""
    assert not job.error_detail.startswith("The Docker engine is not answering")
    assert client_for("owner").get(f"/api/jobs/{job.pk}/").json()["executor_notice"] == ""


@pytest.mark.django_db
def test_the_notice_names_the_day_when_it_began_before_today(
    users: dict[str, User], workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    job = running_job(workspace, users["owner"], "local-docker")
    Job.objects.filter(pk=job.pk).update(
        executor_unreachable_since=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        executor_unreachable_what="The storage",
    )
    shown = client_for("owner").get(f"/api/jobs/{job.pk}/").json()
    assert shown["executor_notice"] == (
        "The storage is not answering (since 2020-01-02 03:04 UTC); "
        "the job will continue when it is back."
    )


@pytest.mark.django_db(transaction=True)
def test_migration_moves_old_prefixes_into_the_columns(
    users: dict[str, User], workspace: Workspace
) -> None:
    before = [("operations", "0006_cromwell_health_schedule")]
    after = [("operations", "0007_job_executor_unreachable")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldJob = old_apps.get_model("operations", "Job")
        common = {"workspace_id": workspace.pk, "owner_id": users["owner"].pk, "status": "running"}
        marked = OldJob.objects.create(
            **common,
            error_detail=OLD_PREFIX + "The Docker engine is not answering. its socket is gone",
        )
        failed = OldJob.objects.create(**common, error_detail="exit code 3")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    moved = Job.objects.get(pk=marked.pk)
    assert moved.executor_unreachable_since == datetime(2026, 12, 6, 19, 2, 11, tzinfo=UTC)
    assert moved.executor_unreachable_what == "The Docker engine"
    assert moved.error_detail == "The Docker engine is not answering. its socket is gone"
    untouched = Job.objects.get(pk=failed.pk)
    assert untouched.executor_unreachable_since is None
    assert untouched.error_detail == "exit code 3"
