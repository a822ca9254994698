"""Workspaces and members: create, rename, delete rules, roles, last owner, duplicates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import File, Membership, Role, User, Workspace
from operations.models import Job
from operations.states import JobStatus

pytestmark = pytest.mark.django_db


def test_create_makes_creator_owner(
    client_for: Callable[[str], APIClient], users: dict[str, User]
) -> None:
    response = client_for("other").post("/api/workspaces/", {"name": "  Mine  "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Mine"
    assert body["role"] == "owner"
    assert Membership.objects.get(workspace_id=body["id"]).role == Role.OWNER


def test_list_shows_only_member_workspaces_with_role(
    client_for: Callable[[str], APIClient], workspace: Workspace, file: File
) -> None:
    rows = client_for("viewer").get("/api/workspaces/").json()["results"]
    assert [(r["name"], r["role"], r["file_count"]) for r in rows] == [("Project A", "viewer", 1)]
    assert client_for("other").get("/api/workspaces/").json()["results"] == []
    assert len(client_for("staff").get("/api/workspaces/").json()["results"]) == 1


def test_rename_and_blank_name(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client = client_for("editor")
    assert (
        client.patch(f"/api/workspaces/{workspace.pk}/", {"name": "B"}, format="json").json()[
            "name"
        ]
        == "B"
    )
    blank = client.patch(f"/api/workspaces/{workspace.pk}/", {"name": "   "}, format="json")
    assert blank.status_code == 400
    assert "name" in blank.json()["details"]
    assert (
        client.put(f"/api/workspaces/{workspace.pk}/", {"name": "C"}, format="json").status_code
        == 405
    )


def test_delete_refused_while_jobs_active(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    job = Job.objects.create(workspace=workspace, owner=users["owner"], status=JobStatus.RUNNING)
    response = client_for("owner").delete(f"/api/workspaces/{workspace.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "workspace_has_active_jobs"
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert client_for("owner").delete(f"/api/workspaces/{workspace.pk}/").status_code == 204
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


def test_delete_with_files_needs_flag_and_removes_content(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    file: File,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from api.storage import local_path

    path = local_path(file.storage_uri)
    client = client_for("owner")
    refused = client.delete(f"/api/workspaces/{workspace.pk}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "workspace_not_empty"
    assert "delete_files" in refused.json()["details"]
    bad = client.delete(f"/api/workspaces/{workspace.pk}/?delete_files=maybe")
    assert bad.status_code == 400
    assert "delete_files" in bad.json()["details"]
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.delete(f"/api/workspaces/{workspace.pk}/?delete_files=true").status_code == 204
        )
    assert not File.objects.filter(pk=file.pk).exists()
    import os

    assert not os.path.exists(path)


def _members(workspace: Workspace) -> str:
    return f"/api/workspaces/{workspace.pk}/members/"


def test_owner_manages_members_by_email(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    client = client_for("owner")
    added = client.post(
        _members(workspace), {"email": "OTHER@example.org", "role": "editor"}, format="json"
    )
    assert added.status_code == 201
    assert added.json()["role"] == "editor"
    listed = client.get(_members(workspace)).json()["results"]
    assert {m["email"] for m in listed} == {
        "owner@example.org",
        "editor@example.org",
        "viewer@example.org",
        "other@example.org",
    }
    url = f"{_members(workspace)}{users['other'].pk}/"
    assert client.patch(url, {"role": "viewer"}, format="json").json()["role"] == "viewer"
    assert client.delete(url).status_code == 204
    assert client_for("other").get(f"/api/workspaces/{workspace.pk}/").status_code == 404


def test_member_bad_input(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    client = client_for("owner")
    duplicate = client.post(
        _members(workspace), {"email": "editor@example.org", "role": "viewer"}, format="json"
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "duplicate_member"
    assert "email" in duplicate.json()["details"]
    unknown = client.post(
        _members(workspace), {"email": "nobody@example.org", "role": "viewer"}, format="json"
    )
    assert unknown.status_code == 400
    assert "email" in unknown.json()["details"]
    bad_role = client.post(
        _members(workspace), {"email": "other@example.org", "role": "god"}, format="json"
    )
    assert bad_role.status_code == 400
    assert "role" in bad_role.json()["details"]
    assert Membership.objects.filter(workspace=workspace).count() == 3


def test_last_owner_cannot_leave_or_be_demoted(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    client = client_for("owner")
    me = f"{_members(workspace)}{users['owner'].pk}/"
    demote = client.patch(me, {"role": "editor"}, format="json")
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    leave = client.delete(me)
    assert leave.status_code == 409
    assert leave.json()["code"] == "last_owner"
    # With a second owner, the first may step down.
    client.patch(f"{_members(workspace)}{users['editor'].pk}/", {"role": "owner"}, format="json")
    assert client.patch(me, {"role": "viewer"}, format="json").status_code == 200


def test_unknown_workspace_is_404(client_for: Callable[[str], APIClient]) -> None:
    response = client_for("owner").get("/api/workspaces/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client_for("owner").get("/api/workspaces/not-a-uuid/").status_code == 404


def test_filter_and_order(client_for: Callable[[str], APIClient], users: dict[str, User]) -> None:
    client = client_for("owner")
    for name in ("beta", "alpha", "gamma"):
        client.post("/api/workspaces/", {"name": name}, format="json")
    names = [w["name"] for w in client.get("/api/workspaces/?ordering=name").json()["results"]]
    assert names == ["alpha", "beta", "gamma"]
    assert [w["name"] for w in client.get("/api/workspaces/?name=AMM").json()["results"]] == [
        "gamma"
    ]
    page = client.get("/api/workspaces/?page_size=2&ordering=name").json()
    assert len(page["results"]) == 2
    assert page["next"]
    rest = client.get(page["next"]).json()
    assert [w["name"] for w in rest["results"]] == ["gamma"]


def test_list_query_count_does_not_grow_with_page_size(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    django_assert_max_num_queries: Any,
) -> None:
    from api import services

    for i in range(30):
        ws = services.workspace_create(user=users["owner"], name=f"w{i}")
        services.member_add(workspace=ws, email="viewer@example.org", role="viewer")
    client = client_for("viewer")
    with django_assert_max_num_queries(3):
        assert len(client.get("/api/workspaces/?page_size=5").json()["results"]) == 5
    with django_assert_max_num_queries(3):
        assert len(client.get("/api/workspaces/?page_size=30").json()["results"]) == 30
