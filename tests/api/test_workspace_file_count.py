"""A workspace's ``file_count`` is kept by the database as files come and go, so the workspaces
list never counts files; it stays equal to what the workspace's files list shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import file_states, services
from api.models import File, FileStatus, FileType, User, Workspace, WorkspaceFileCount
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation


def _shown(client: APIClient) -> dict[str, tuple[int, int]]:
    """Each workspace's file_count in the workspaces list, and the length of its files list."""
    with CaptureQueriesContext(connection) as captured:
        listed = client.get("/api/workspaces/?page_size=100").json()["results"]
    assert not any('"api_file"' in q["sql"] for q in captured.captured_queries), (
        "the workspaces list reads the files table"
    )
    shown = {}
    for row in listed:
        files = client.get(f"/api/files/?workspace={row['id']}&page_size=500").json()["results"]
        shown[row["name"]] = (row["file_count"], len(files))
    return shown


def _result(workspace: Workspace, job: Job, owner: User, n: int) -> File:
    return File.objects.create(
        workspace=workspace,
        owner=owner,
        name=f"result-{n}.txt",
        size=1,
        file_type=FileType.TEXT,
        status=FileStatus.PENDING,
        storage_uri=f"file:///results/{job.pk}/{n}",
        produced_by=job,
    )


def test_file_count_follows_create_delete_move_and_published_results(
    workspace: Workspace,
    users: dict[str, User],
    make_file: Callable[..., File],
    client_for: Callable[[str], APIClient],
) -> None:
    owner = users["owner"]
    other = services.workspace_create(user=owner, name="Project B")
    client = client_for("owner")
    assert _shown(client) == {"Project A": (0, 0), "Project B": (0, 0)}

    first = make_file(workspace, name="a.tsv")
    make_file(workspace, name="b.tsv")
    File.objects.bulk_create(
        File(
            workspace=workspace,
            owner=owner,
            name=f"bulk-{n}.txt",
            size=1,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///bulk/{n}",
        )
        for n in range(3)
    )
    assert _shown(client) == {"Project A": (5, 5), "Project B": (0, 0)}

    # A job's results are stored pending and hidden: not counted until published.
    job = Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=owner,
        status=JobStatus.RUNNING.value,
        inputs={"text": "x"},
    )
    published, failed = _result(workspace, job, owner, 1), _result(workspace, job, owner, 2)
    assert _shown(client) == {"Project A": (5, 5), "Project B": (0, 0)}
    assert file_states.file_transition(published, FileStatus.READY)
    failed.delete()  # a failed job's results are removed unpublished
    assert _shown(client) == {"Project A": (6, 6), "Project B": (0, 0)}

    services.file_update(user=owner, file=first, workspace=other)
    assert _shown(client) == {"Project A": (5, 5), "Project B": (1, 1)}

    services.file_delete(file=File.objects.get(name="b.tsv"))
    File.objects.filter(name__startswith="bulk-").delete()
    assert _shown(client) == {"Project A": (1, 1), "Project B": (1, 1)}

    # Saving a workspace (a rename) leaves its count alone.
    services.workspace_update(workspace=other, user=owner, name="Project B2")
    assert _shown(client) == {"Project A": (1, 1), "Project B2": (1, 1)}

    services.workspace_delete(workspace=other, delete_files=True)
    assert not WorkspaceFileCount.objects.filter(workspace_id=other.pk).exists()
    assert _shown(client) == {"Project A": (1, 1)}


def test_a_new_workspace_starts_at_zero(client_for: Callable[[str], APIClient], db: Any) -> None:
    client = client_for("owner")
    created = client.post("/api/workspaces/", {"name": "Fresh"}).json()
    assert created["file_count"] == 0
    assert WorkspaceFileCount.objects.get(workspace_id=created["id"]).files == 0
