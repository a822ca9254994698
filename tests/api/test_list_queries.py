"""Every list endpoint costs the same number of SQL queries for a page of 5 rows as for a page
of 50, for staff and for a normal member (no query per row: owners, output files and their
owners, roles and counts are read with the page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api.models import (
    ApiToken,
    Credential,
    ElementKind,
    ElementSet,
    File,
    FileStatus,
    FileType,
    Membership,
    Role,
    User,
    Workspace,
)
from operations.models import CromwellServer, Job, Operation, OperationMode
from operations.states import JobStatus
from tests.conftest import make_user

ROWS = 55  # more than the big page, so both pages are full


def _bulk_users(prefix: str, count: int) -> list[User]:
    return User.objects.bulk_create(
        User(email=f"{prefix}-{n}@example.org", password="!") for n in range(count)
    )


@pytest.fixture
def populated(workspace: Workspace, users: dict[str, User]) -> dict[str, Any]:
    """ROWS of everything the lists show, with owners and creators that differ row by row (so a
    per-row lookup can't be served from one cached object)."""
    others = _bulk_users("member", ROWS)
    Membership.objects.bulk_create(
        Membership(workspace=workspace, user=user, role=Role.VIEWER) for user in others
    )
    # Workspaces the viewer is a member of (each with files of its own: file_count per row).
    extra = Workspace.objects.bulk_create(
        Workspace(name=f"W{n:02d}", created_by=others[n]) for n in range(ROWS)
    )
    Membership.objects.bulk_create(
        Membership(workspace=ws, user=users["viewer"], role=Role.EDITOR) for ws in extra
    )
    File.objects.bulk_create(
        File(
            workspace=ws,
            owner=others[n],
            name=f"extra-{n}.txt",
            size=n,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///extra/{ws.pk}/{n}",
        )
        for n, ws in enumerate(extra)
    )
    File.objects.bulk_create(
        File(
            workspace=workspace,
            owner=others[n],
            name=f"file-{n:03d}.txt",
            size=n,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///files/{n}",
        )
        for n in range(ROWS)
    )
    operations = Operation.objects.bulk_create(
        Operation(
            name=f"op-{n:02d}",
            version="1",
            revision=f"r{n}",
            mode=OperationMode.DOCKER,
            spec={"name": f"op-{n:02d}", "inputs": {}, "outputs": {}},
            image="busybox",
            source="tests",
            added_by=others[n],
        )
        for n in range(ROWS)
    )
    jobs = Job.objects.bulk_create(
        Job(
            operation=operations[n],
            workspace=workspace,
            owner=others[n],
            status=JobStatus.SUCCEEDED.value,
            inputs={"n": n},
        )
        for n in range(ROWS)
    )
    File.objects.bulk_create(
        File(
            workspace=workspace,
            owner=others[(n + k) % ROWS],
            name=f"out-{n}-{k}.txt",
            size=1,
            file_type=FileType.TEXT,
            status=FileStatus.READY,
            storage_uri=f"file:///results/{job.pk}/{k}",
            produced_by=job,
        )
        for n, job in enumerate(jobs)
        for k in range(2)
    )
    ElementSet.objects.bulk_create(
        ElementSet(
            workspace=workspace,
            kind=ElementKind.choices[0][0],
            name=f"set-{n}",
            elements=[{"id": f"s{n}", "attributes": {}}],
            element_count=1,
            created_by=others[n],
        )
        for n in range(ROWS)
    )
    credentials = Credential.objects.bulk_create(
        Credential(name=f"cred-{n}", kind="cromwell", created_by=others[n]) for n in range(ROWS)
    )
    CromwellServer.objects.bulk_create(
        CromwellServer(name=f"c{n}", url=f"http://c{n}.example.org", credential=credentials[n])
        for n in range(ROWS)
    )
    for holder in (users["viewer"], users["staff"]):
        ApiToken.objects.bulk_create(
            ApiToken(user=holder, name=f"t{n}", prefix=f"p{n}", key_hash=f"{holder.pk}-{n}")
            for n in range(ROWS)
        )
    return {"workspace": workspace}


# (label, path template, who may list it)
LISTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("workspaces", "/api/workspaces/", ("staff", "viewer")),
    ("members", "/api/workspaces/{ws}/members/", ("staff", "owner")),
    ("files", "/api/files/", ("staff", "viewer")),
    ("files of a workspace", "/api/files/?workspace={ws}", ("staff", "viewer")),
    ("files by name", "/api/files/?ordering=name", ("staff", "viewer")),
    ("sets", "/api/sets/", ("staff", "viewer")),
    ("operations", "/api/operations/", ("staff", "viewer")),
    ("jobs", "/api/jobs/", ("staff", "viewer")),
    ("jobs of a workspace", "/api/jobs/?workspace={ws}", ("staff", "viewer")),
    ("jobs succeeded", "/api/jobs/?status=succeeded", ("staff", "viewer")),
    ("api tokens", "/api/auth/api-tokens/", ("staff", "viewer")),
    ("credentials", "/api/credentials/", ("staff",)),
    ("cromwell servers", "/api/cromwell-servers/", ("staff",)),
]
CASES = [(label, path, who) for label, path, roles in LISTS for who in roles]


def _page(client: APIClient, path: str, size: int) -> tuple[int, list[str]]:
    joiner = "&" if "?" in path else "?"
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"{path}{joiner}page_size={size}")
    assert response.status_code == 200, response.content[:500]
    rows = len(response.json()["results"])
    return rows, [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize(("label", "path", "who"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_list_queries_do_not_grow_with_the_page(
    label: str,
    path: str,
    who: str,
    populated: dict[str, Any],
    client_for: Callable[[str], APIClient],
) -> None:
    client = client_for(who)
    url = path.format(ws=populated["workspace"].pk)
    small_rows, small = _page(client, url, 5)
    big_rows, big = _page(client, url, 50)
    assert (small_rows, big_rows) == (5, 50), f"{label}: not enough rows to compare"
    assert len(small) == len(big), (
        f"{label} as {who}: {len(small)} queries for 5 rows, {len(big)} for 50:\n" + "\n".join(big)
    )


def test_a_member_of_no_workspace_lists_nothing_cheaply(
    populated: dict[str, Any], client_for: Callable[[str], APIClient]
) -> None:
    make_user("lonely@example.org")
    client = APIClient()
    client.force_authenticate(User.objects.get(email="lonely@example.org"))
    for path in ("/api/workspaces/", "/api/files/", "/api/jobs/", "/api/sets/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json()["results"] == []


def test_cromwell_servers_list_counts_each_servers_active_jobs(
    workspace: Workspace, users: dict[str, User], client_for: Callable[[str], APIClient]
) -> None:
    busy, _idle = CromwellServer.objects.bulk_create(
        CromwellServer(name=name, url=f"http://{name}.example.org") for name in ("busy", "idle")
    )
    operation = Operation.objects.create(
        name="wf", version="1", revision="r", mode=OperationMode.DOCKER, spec={}, source="tests"
    )
    for status in (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.SUCCEEDED):
        Job.objects.create(
            operation=operation,
            workspace=workspace,
            owner=users["owner"],
            status=status.value,
            executor=busy.executor_alias,
        )
    body = client_for("staff").get("/api/cromwell-servers/").json()
    assert {row["name"]: row["active_jobs"] for row in body["results"]} == {"busy": 2, "idle": 0}
    assert client_for("staff").get(f"/api/cromwell-servers/{busy.pk}/").json()["active_jobs"] == 2


# (list's viewset, model, the column its rows are scoped by in a request, or None when the
#  whole table is listed: staff see every file, job and set; only members' lists scope them)
ORDERED_LISTS: list[tuple[str, type[Any], list[str | None]]] = [
    ("api.views.workspaces.WorkspaceViewSet", Workspace, [None]),
    ("api.views.workspaces.WorkspaceMemberViewSet", Membership, ["workspace_id"]),
    ("api.views.files.FileViewSet", File, [None, "workspace_id"]),
    ("api.views.element_sets.ElementSetViewSet", ElementSet, [None, "workspace_id"]),
    ("api.views.operations.OperationViewSet", Operation, [None]),
    ("api.views.jobs.JobViewSet", Job, [None, "workspace_id"]),
    ("api.views.credentials.CredentialViewSet", Credential, [None]),
    ("api.views.cromwell.CromwellServerViewSet", CromwellServer, [None]),
    ("api.views.accounts.ApiTokenViewSet", ApiToken, ["user_id"]),
]


@pytest.mark.parametrize(("view_path", "model", "scopes"), ORDERED_LISTS)
def test_every_ordering_a_list_offers_has_an_index(
    view_path: str, model: type[Any], scopes: list[str | None], db: Any
) -> None:
    """Each ``ordering`` a list accepts (and created_at, the pagination's default) leads an
    index, alone and after the column the list is scoped by, so a first page reads an index
    instead of sorting the table."""
    from django.utils.module_loading import import_string

    view = import_string(view_path)
    orderings = {"created_at", *(getattr(view, "ordering_fields", None) or [])}
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    leading = [tuple(c["columns"]) for c in found.values() if c["index"] or c["unique"]]
    missing = []
    for name in sorted(orderings):
        column = model._meta.get_field(name).column
        for scope in scopes:
            wanted = (column,) if scope is None else (scope, column)
            if not any(cols[: len(wanted)] == wanted for cols in leading):
                missing.append(wanted)
    assert not missing, f"{model.__name__}: no index leads with {missing}; indexes: {leading}"
