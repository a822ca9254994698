"""operations/selectors.py called directly (no HTTP): which jobs each role sees, and what a jobs
list reads (related rows joined or prefetched, the heavy columns deferred)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api import services
from api.models import File, User, Workspace
from operations.models import Job
from operations.selectors import LISTED_OUTPUT_FILES, jobs_visible_to
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(users: dict[str, User], workspace: Workspace) -> dict[str, Job]:
    """A job in ``workspace`` (by its editor) and one in a workspace of the stranger's."""
    operation = make_echo_operation()
    elsewhere = services.workspace_create(user=users["other"], name="Elsewhere")
    return {
        "here": Job.objects.create(
            operation=operation,
            workspace=workspace,
            owner=users["editor"],
            run_spec={"image": "x", "command": "big " * 1000},
            stdout_tail="out",
        ),
        "elsewhere": Job.objects.create(
            operation=operation, workspace=elsewhere, owner=users["other"]
        ),
    }


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_members_see_their_workspaces_jobs_whoever_started_them(
    role: str, users: dict[str, User], jobs: dict[str, Job]
) -> None:
    assert list(jobs_visible_to(users[role])) == [jobs["here"]]


def test_a_stranger_sees_only_the_jobs_of_their_own_workspace(
    users: dict[str, User], jobs: dict[str, Job]
) -> None:
    assert list(jobs_visible_to(users["other"])) == [jobs["elsewhere"]]


def test_staff_see_every_job(users: dict[str, User], jobs: dict[str, Job]) -> None:
    assert set(jobs_visible_to(users["staff"])) == set(jobs.values())


def test_a_member_removed_from_a_workspace_no_longer_sees_its_jobs(
    users: dict[str, User], workspace: Workspace, jobs: dict[str, Job]
) -> None:
    services.member_remove(membership=workspace.memberships.get(user=users["viewer"]))

    assert not jobs_visible_to(users["viewer"]).exists()


def test_a_list_reads_jobs_their_relations_and_output_files_in_two_queries(
    users: dict[str, User],
    workspace: Workspace,
    jobs: dict[str, Job],
    make_file: Callable[..., File],
    django_assert_num_queries: Any,
) -> None:
    for n in range(3):
        extra = Job.objects.create(
            operation=jobs["here"].operation, workspace=workspace, owner=users["owner"]
        )
        extra.output_files.add(make_file(workspace, name=f"out{n}.tsv", owner=users["editor"]))

    with django_assert_num_queries(2):  # the jobs (joined), their output files (with owners)
        listed = list(jobs_visible_to(users["viewer"], for_list=True))
        seen = [
            (
                job.operation.name if job.operation else None,
                job.owner.email,
                job.workspace_id,
                *(f.owner.email for f in getattr(job, LISTED_OUTPUT_FILES)),
            )
            for job in listed
        ]

    assert len(seen) == 4
    assert (
        sorted(s for s in seen if len(s) == 4)
        == [("echo", "owner@example.org", workspace.pk, "editor@example.org")] * 3
    )
    # A list shows a job's workspace by its id only: no workspace is built for it.
    assert not any(Job.workspace.field.is_cached(job) for job in listed)


def test_a_list_defers_the_columns_it_never_shows(
    users: dict[str, User], jobs: dict[str, Job]
) -> None:
    listed = jobs_visible_to(users["owner"], for_list=True).get()
    one = jobs_visible_to(users["owner"]).get()
    assert listed.operation is not None

    assert {"run_spec", "stdout_tail", "stderr_tail", "external_id"} <= listed.get_deferred_fields()
    assert {"spec", "source", "build_log"} <= listed.operation.get_deferred_fields()
    assert not one.get_deferred_fields()
    assert one.run_spec["command"].startswith("big ")
