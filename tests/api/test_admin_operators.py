"""The Django admin shows jobs, events and leases without letting anyone edit them; operators
cancel and retry jobs with actions that go through the services and the state machine."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from api.models import User, Workspace
from operations.models import Event, Job, Lease, Operation
from operations.states import JobStatus
from tests.conftest import make_user
from tests.operations_fixtures import make_echo_operation

JOBS = "/admin/operations/job/"


@pytest.fixture
def operator(db: Any) -> Client:
    client = Client()
    client.force_login(make_user("root@example.org", is_staff=True, is_superuser=True))
    return client


def make_job(workspace: Workspace, owner: User, status: JobStatus) -> Job:
    return Job.objects.create(
        operation=Operation.objects.filter(name="echo").first() or make_echo_operation(),
        workspace=workspace,
        owner=owner,
        inputs={"text": "hello"},
        executor="local-docker",
        run_spec={"image": "ferry/busybox:latest", "command": "echo hello"},
        status=status,
        error_message="It failed." if status == JobStatus.FAILED else "",
    )


def act(client: Client, action: str, *jobs: Job) -> Any:
    return client.post(
        JOBS,
        {"action": action, "_selected_action": [str(j.pk) for j in jobs], "index": 0},
        follow=True,
    )


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_a_jobs_page_has_no_editable_field_and_a_posted_change_alters_nothing(
    operator: Client, users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"], JobStatus.RUNNING)
    page = operator.get(f"{JOBS}{job.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("status", "inputs", "run_spec", "executor", "error_detail", "owner"):
        assert f'name="{field}"' not in html, field
    assert "hello" in html  # shown, read-only

    posted = operator.post(
        f"{JOBS}{job.pk}/change/",
        {
            "status": "succeeded",
            "inputs": '{"text": "changed"}',
            "run_spec": '{"image": "evil", "command": "rm -rf /"}',
            "executor": "elsewhere",
            "_save": "Save",
        },
    )
    assert posted.status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.inputs == {"text": "hello"}
    assert job.run_spec["image"] == "ferry/busybox:latest"
    assert job.executor == "local-docker"
    assert not Event.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_jobs_events_and_leases_cannot_be_added_changed_or_deleted(
    operator: Client, users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"], JobStatus.QUEUED)
    event = Event.objects.create(workspace=workspace, job=job, kind="job.status", payload={})
    lease = Lease.objects.create(name="poll-active", holder="worker-1", expires_at=timezone.now())
    # The one event table (jobs', files' and memberships' events) lives in api.
    for model, pk in (
        ("operations/job", job.pk),
        ("api/event", event.pk),
        ("operations/lease", lease.pk),
    ):
        base = f"/admin/{model}/"
        assert operator.get(f"{base}add/").status_code == 403, model
        assert operator.post(f"{base}add/", {}).status_code == 403, model
        assert operator.get(f"{base}{pk}/change/").status_code == 200, model  # view only
        assert operator.post(f"{base}{pk}/change/", {"_save": "Save"}).status_code == 403
        assert operator.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403
        listed = operator.get(base)
        assert listed.status_code == 200
        assert "delete_selected" not in listed.content.decode(), model
    assert Job.objects.filter(pk=job.pk).exists()
    assert Event.objects.filter(pk=event.pk).exists()
    assert Lease.objects.get(pk=lease.pk).holder == "worker-1"


@pytest.mark.django_db
def test_cancel_goes_through_the_state_machine(
    operator: Client, users: dict[str, User], workspace: Workspace
) -> None:
    running = make_job(workspace, users["owner"], JobStatus.RUNNING)
    done = make_job(workspace, users["owner"], JobStatus.SUCCEEDED)
    response = act(operator, "cancel_jobs", running, done)
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.status == JobStatus.CANCELLING
    moved = Event.objects.get(job=running, kind="job.status")
    assert moved.payload["from"] == "running"
    assert moved.payload["to"] == "cancelling"
    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED
    assert not Event.objects.filter(job=done).exists()
    said = shown_messages(response)
    assert "Cancelling 1 job(s)." in said
    assert any(m.startswith("Not cancelled: ") and str(done.pk) in m for m in said), said


@pytest.mark.django_db
def test_retry_creates_a_new_job_and_keeps_the_old_one(
    operator: Client, users: dict[str, User], workspace: Workspace
) -> None:
    failed = make_job(workspace, users["owner"], JobStatus.FAILED)
    running = make_job(workspace, users["owner"], JobStatus.RUNNING)
    response = act(operator, "retry_jobs", failed, running)
    assert response.status_code == 200

    failed.refresh_from_db()
    assert failed.status == JobStatus.FAILED
    assert failed.error_message == "It failed."
    retry = Job.objects.exclude(pk__in=[failed.pk, running.pk]).get()
    assert retry.status == JobStatus.QUEUED
    assert retry.operation_id == failed.operation_id
    assert retry.workspace_id == workspace.pk
    assert retry.inputs == failed.inputs
    assert retry.executor == failed.executor
    assert Event.objects.filter(job=retry, payload__to="queued").exists()
    running.refresh_from_db()
    assert running.status == JobStatus.RUNNING
    said = shown_messages(response)
    assert any(f"{failed.pk} as {retry.pk}" in m for m in said), said
    assert any(m.startswith("Not retried: ") and str(running.pk) in m for m in said), said


@pytest.mark.django_db
def test_staff_who_may_only_view_jobs_get_no_actions(
    users: dict[str, User], workspace: Workspace
) -> None:
    viewer = make_user("looker@example.org", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client = Client()
    client.force_login(viewer)
    job = make_job(workspace, users["owner"], JobStatus.RUNNING)
    listed = client.get(JOBS)
    assert listed.status_code == 200
    assert "cancel_jobs" not in listed.content.decode()
    act(client, "cancel_jobs", job)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert not Event.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_sets_are_listed_and_their_elements_cannot_be_edited_here(
    operator: Client, users: dict[str, User], workspace: Workspace
) -> None:
    from api.element_sets import services as set_services

    made = set_services.element_set_create(
        user=users["owner"],
        workspace=workspace,
        kind="observation",
        name="controls",
        description="",
        elements=[{"id": "s1"}, {"id": "s2"}],
    )
    listed = operator.get("/admin/api/elementset/")
    assert listed.status_code == 200
    assert "controls" in listed.content.decode()
    page = operator.get(f"/admin/api/elementset/{made.pk}/change/")
    assert page.status_code == 200
    assert 'name="elements"' not in page.content.decode()
    assert operator.get("/admin/api/elementset/add/").status_code == 403
