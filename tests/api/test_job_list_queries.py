"""A workspace's jobs list costs the same few SQL queries however many jobs (and output files)
it shows, and doesn't read the columns it never shows (run spec, log tails)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api.models import File, FileStatus, FileType, User, Workspace
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

# Session/auth, the workspace filter's choice check, the page of jobs, their output files.
JOB_LIST_MAX_QUERIES = 6


def _make_jobs(workspace: Workspace, owner: User, count: int, files_each: int = 2) -> None:
    operation = make_echo_operation()
    heavy = {"image": "x", "command": "y" * 20_000, "mounts": [{"a": "b"}] * 200}
    jobs = Job.objects.bulk_create(
        Job(
            operation=operation,
            workspace=workspace,
            owner=owner,
            status=JobStatus.SUCCEEDED.value,
            inputs={"text": f"hello {i}"},
            run_spec=heavy,
            stdout_tail="o" * 10_000,
            stderr_tail="e" * 10_000,
        )
        for i in range(count)
    )
    File.objects.bulk_create(
        File(
            workspace=workspace,
            owner=owner,
            name=f"out-{i}-{k}.txt",
            size=1,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///results/{job.pk}/{k}",
            produced_by=job,
        )
        for i, job in enumerate(jobs)
        for k in range(files_each)
    )


def _list(client: APIClient, workspace: Workspace, page_size: int) -> list[dict[str, Any]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/jobs/?workspace={workspace.pk}&page_size={page_size}")
    assert response.status_code == 200, response.content
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(queries) <= JOB_LIST_MAX_QUERIES, "\n".join(
        q["sql"] for q in queries.captured_queries
    )
    for query in queries.captured_queries:
        sql = query["sql"]
        if 'FROM "operations_job"' in sql:
            assert '"run_spec"' not in sql, sql
            assert '"stdout_tail"' not in sql, sql
    return results


@pytest.mark.parametrize("count", [1, 120])
def test_job_list_takes_a_constant_number_of_queries(
    count: int,
    workspace: Workspace,
    users: dict[str, User],
    client_for: Callable[[str], APIClient],
) -> None:
    _make_jobs(workspace, users["owner"], count)
    results = _list(client_for("viewer"), workspace, page_size=500)
    assert len(results) == count
    first = results[0]
    assert len(first["output_files"]) == 2
    assert first["output_files"][0]["owner"] == users["owner"].email
    assert first["operation_name"] == "echo"
    assert first["owner"] == users["owner"].email


def test_job_detail_still_shows_everything(
    workspace: Workspace, users: dict[str, User], client_for: Callable[[str], APIClient]
) -> None:
    _make_jobs(workspace, users["owner"], 1, files_each=3)
    job = Job.objects.get()
    body = client_for("viewer").get(f"/api/jobs/{job.pk}/").json()
    assert body["inputs"] == {"text": "hello 0"}
    assert {f["name"] for f in body["output_files"]} == {f"out-0-{k}.txt" for k in range(3)}
