"""api/selectors.py called directly (no HTTP): which workspaces and files each role reads, which
stored objects belong to a workspace a user can't read, roles, usable API tokens; and the one
write check of api/services.py (``require_write``) for every role."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from api import services
from api.exceptions import ApplicationError, Forbidden
from api.models import ApiToken, File, FileStatus, Role, User, Workspace
from api.selectors import (
    files_visible_to,
    object_of_unreadable_workspace,
    role_in,
    usable_api_tokens,
    workspaces_visible_to,
)
from operations.models import Job
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db

MEMBERS = ("owner", "editor", "viewer")


@pytest.fixture
def elsewhere(users: dict[str, User]) -> Workspace:
    """A workspace of the stranger ("other"), that no member of ``workspace`` belongs to."""
    return services.workspace_create(user=users["other"], name="Elsewhere")


def pending_result(workspace: Workspace, owner: User, name: str = "result.txt") -> File:
    """A job's result as finalize stores it: pending, with ``produced_by`` set."""
    job = Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=owner,
        status=JobStatus.FINALIZING,
    )
    return File.objects.create(
        workspace=workspace,
        owner=owner,
        name=name,
        size=3,
        file_type="text",
        status=FileStatus.PENDING,
        storage_uri=f"s3://results/{name}",
        produced_by=job,
    )


# ----------------------------------------------------------------------------------- workspaces


@pytest.mark.parametrize("role", MEMBERS)
def test_members_see_their_workspace_and_not_a_strangers(
    role: str, users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    assert list(workspaces_visible_to(users[role])) == [workspace]


def test_a_stranger_sees_only_their_own_workspace(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    assert list(workspaces_visible_to(users["other"])) == [elsewhere]


def test_staff_see_every_workspace_without_being_a_member(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    assert set(workspaces_visible_to(users["staff"])) == {workspace, elsewhere}


def test_a_user_in_no_workspace_sees_none(users: dict[str, User], workspace: Workspace) -> None:
    assert not workspaces_visible_to(users["other"]).exists()


# ---------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("role", [*MEMBERS, "staff"])
def test_members_and_staff_see_a_workspaces_files(
    role: str, users: dict[str, User], file: File, elsewhere: Workspace
) -> None:
    assert list(files_visible_to(users[role])) == [file]


def test_a_stranger_sees_no_file_of_a_workspace_they_are_not_in(
    users: dict[str, User],
    file: File,
    elsewhere: Workspace,
    make_file: Callable[..., File],
) -> None:
    theirs = make_file(elsewhere, owner=users["other"], name="theirs.tsv")

    assert list(files_visible_to(users["other"])) == [theirs]
    assert theirs not in files_visible_to(users["owner"])


@pytest.mark.parametrize("role", [*MEMBERS, "staff"])
def test_a_jobs_results_are_seen_by_nobody_until_they_are_published(
    role: str, users: dict[str, User], workspace: Workspace
) -> None:
    result = pending_result(workspace, users["owner"])

    assert result not in files_visible_to(users[role])

    services.file_publish_results(job=result.produced_by)

    assert result in files_visible_to(users[role])


def test_a_pending_upload_is_seen_by_members(users: dict[str, User], workspace: Workspace) -> None:
    """Only job results are held back while pending; a pending upload (no ``produced_by``) is
    the uploader's to complete and shows in the listing."""
    upload = File.objects.create(
        workspace=workspace,
        owner=users["editor"],
        name="direct.bin",
        size=10,
        file_type="other",
        status=FileStatus.PENDING,
        storage_uri="s3://uploads/direct.bin",
    )

    assert upload in files_visible_to(users["viewer"])
    assert upload not in files_visible_to(users["other"])


# ------------------------------------------------------------------ objects of other workspaces


def test_an_object_under_an_unreadable_workspaces_prefix_is_refused(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    uri = f"s3://shared/site/workspaces/{elsewhere.pk}/files/x/data.txt"

    assert object_of_unreadable_workspace(users["owner"], uri) is True
    assert object_of_unreadable_workspace(users["other"], uri) is False
    assert object_of_unreadable_workspace(users["staff"], uri) is False


@pytest.mark.parametrize("role", MEMBERS)
def test_an_object_under_ones_own_workspaces_prefix_is_readable(
    role: str, users: dict[str, User], workspace: Workspace
) -> None:
    uri = f"gs://shared/workspaces/{workspace.pk}/uploads/y/data.txt"

    assert object_of_unreadable_workspace(users[role], uri) is False


def test_an_engine_folder_naming_an_unreadable_job_or_file_is_refused(
    users: dict[str, User],
    workspace: Workspace,
    elsewhere: Workspace,
    make_file: Callable[..., File],
) -> None:
    theirs = make_file(elsewhere, owner=users["other"], name="theirs.tsv")
    job = Job.objects.create(
        operation=make_echo_operation(), workspace=elsewhere, owner=users["other"]
    )
    by_job = f"s3://cromwell/executions/wf/{job.pk}/call-x/out.txt"
    by_file = f"s3://cromwell/inputs/{uuid.uuid4()}/{theirs.pk}/theirs.tsv"

    for uri in (by_job, by_file):
        assert object_of_unreadable_workspace(users["editor"], uri) is True, uri
        assert object_of_unreadable_workspace(users["other"], uri) is False, uri


def test_an_engine_folder_naming_ones_own_job_is_readable(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = Job.objects.create(
        operation=make_echo_operation(), workspace=workspace, owner=users["owner"]
    )

    uri = f"s3://cromwell/executions/wf/{job.pk}/call-x/out.txt"

    assert object_of_unreadable_workspace(users["viewer"], uri) is False


def test_a_managed_object_of_an_unreadable_workspace_is_refused_wherever_it_lies(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    uri = "s3://plain-bucket/no/workspace/prefix.txt"
    File.objects.create(
        workspace=elsewhere,
        owner=users["other"],
        name="prefix.txt",
        size=1,
        file_type="text",
        status=FileStatus.READY,
        storage_uri=uri,
        managed=True,
    )

    assert object_of_unreadable_workspace(users["owner"], uri) is True
    assert object_of_unreadable_workspace(users["other"], uri) is False


def test_an_object_nobody_owns_is_readable(users: dict[str, User], workspace: Workspace) -> None:
    uri = f"s3://public-data/genomes/{uuid.uuid4()}/reference.fa"

    assert object_of_unreadable_workspace(users["other"], uri) is False


# ---------------------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", Role.OWNER),
        ("editor", Role.EDITOR),
        ("viewer", Role.VIEWER),
        ("other", None),
        ("staff", Role.OWNER),
    ],
)
def test_role_in_a_workspace(
    role: str, expected: Role | None, users: dict[str, User], workspace: Workspace
) -> None:
    assert role_in(users[role], workspace) == expected


def test_a_role_is_read_once_per_workspace_object(
    users: dict[str, User], workspace: Workspace, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        assert role_in(users["editor"], workspace) == Role.EDITOR
        assert role_in(users["editor"], workspace) == Role.EDITOR
    with django_assert_num_queries(1):
        assert role_in(users["other"], workspace) is None
        assert role_in(users["other"], workspace) is None


# ----------------------------------------------------------------------------------- api tokens


def test_usable_api_tokens_are_the_users_unrevoked_unexpired_ones(users: dict[str, User]) -> None:
    owner = users["owner"]
    forever, _ = services.api_token_create(user=owner, name="forever")
    later, _ = services.api_token_create(
        user=owner, name="later", expires_at=timezone.now() + timedelta(days=1)
    )
    revoked, _ = services.api_token_create(user=owner, name="revoked")
    services.api_token_revoke(token=revoked)
    expired, _ = services.api_token_create(
        user=owner, name="expired", expires_at=timezone.now() + timedelta(days=1)
    )
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.api_token_create(user=users["editor"], name="someone else's")

    assert set(usable_api_tokens(owner)) == {forever, later}


# ---------------------------------------------------------------------------------------- write


@pytest.mark.parametrize("role", ["owner", "editor", "staff"])
def test_owners_editors_and_staff_may_write(
    role: str, users: dict[str, User], workspace: Workspace
) -> None:
    services.require_write(users[role], workspace)  # no error


def test_viewers_may_not_write_and_are_told_their_role(
    users: dict[str, User], workspace: Workspace
) -> None:
    with pytest.raises(Forbidden) as refused:
        services.require_write(users["viewer"], workspace, field="destination")

    assert refused.value.status_code == 403
    assert refused.value.details == {"destination": ["Your role in this workspace is viewer."]}


def test_a_stranger_is_told_the_workspace_does_not_exist(
    users: dict[str, User], workspace: Workspace
) -> None:
    with pytest.raises(ApplicationError) as refused:
        services.require_write(users["other"], workspace)

    assert not isinstance(refused.value, Forbidden)  # nothing reveals that it exists
    assert refused.value.code == "does_not_exist"
    assert refused.value.status_code == 400
    assert refused.value.details == {"workspace": ["No such workspace."]}
