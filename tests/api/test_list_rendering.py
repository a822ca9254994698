"""Lists answer exactly what DRF's own reading and rendering answered, only faster.

``FastReadMixin`` reads every row of the files, jobs, operations and workspaces serializers
into the same dict as DRF's ``Serializer.to_representation`` (same keys in the same order, same
values of the same types), for a member and for staff, on rows that take every path: missing
related objects, pending uploads, unset times, naive times, an unreachable executor, output
files of which some are unpublished, annotated and unannotated workspaces. ``FastJSONRenderer``
gives the same bytes as DRF's ``JSONRenderer`` (the same values where only a float's spelling
differs), and every list's body is DRF's rendering of the same data.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from api.models import File, FileStatus, FileType, Membership, User, Workspace, WorkspaceFileCount
from api.renderers import FastJSONRenderer
from api.selectors import (
    files_visible_to,
    user_columns_unlisted,
    workspaces_listed_for,
    workspaces_visible_to,
)
from api.serializers.files import FileSerializer
from api.serializers.jobs import JobSerializer
from api.serializers.operations import OperationDetailSerializer, OperationSerializer
from api.serializers.reading import FastReadMixin
from api.serializers.workspaces import WorkspaceSerializer
from operations.models import Job, Operation
from operations.selectors import jobs_visible_to, operations_visible_to
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(users: dict[str, User], workspace: Workspace, make_file: Callable[..., File]) -> None:
    """Rows that take every path through the serializers."""
    owner = users["owner"]
    ready = make_file(workspace, name="ready.tsv")
    File.objects.filter(pk=ready.pk).update(md5="0" * 32, crc32c="AAAAAA==")
    pending = File.objects.create(
        workspace=workspace,
        owner=users["editor"],
        name="pending.bin",
        size=10,
        file_type=FileType.BINARY,
        status=FileStatus.PENDING,
        storage_uri="s3://bucket/pending",
        pending_expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    File.objects.create(
        workspace=workspace,
        owner=owner,
        name="bad.tsv",
        size=3,
        file_type=FileType.TABLE,
        status=FileStatus.INVALID,
        invalid_reason="Row 2 has 3 columns.",
        storage_uri="file:///x/bad.tsv",
        managed=False,
    )
    operation = make_echo_operation()
    succeeded = Job.objects.create(
        operation=operation,
        workspace=workspace,
        owner=owner,
        status=JobStatus.SUCCEEDED.value,
        inputs={"text": "héllo \u2028", "n": [1, 2.5, None, True]},
        outputs={"said": str(ready.pk), "grid": [[2.5, -0.0], []]},
        executor="dummy",
        attempts=2,
        submitted_at=timezone.now(),
        started_at=timezone.now(),
        finished_at=timezone.now(),
        error_detail="staff only detail",
    )
    ready.produced_by = succeeded
    ready.save()
    pending.produced_by = succeeded
    pending.save()
    Job.objects.create(
        operation=None,
        workspace=workspace,
        owner=users["editor"],
        status=JobStatus.RUNNING.value,
        inputs={},
        executor_unreachable_since=timezone.now() - datetime.timedelta(days=2),
        executor_unreachable_what="The Docker engine",
    )
    Operation.objects.filter(pk=operation.pk).update(hidden=True, image_origin="built")
    services_workspace = Workspace.objects.create(name="Unannotated", created_by=owner)
    assert services_workspace.pk


def _request(user: User) -> Request:
    request = Request(APIRequestFactory().get("/api/"))
    request.user = user
    return request


def _typed(answer: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(key, type(value), value) for key, value in answer.items()]


def _assert_reads_like_drf(serializer: Any, instances: list[Any]) -> None:
    assert instances, type(serializer).__name__
    for instance in instances:
        fast = FastReadMixin.to_representation(serializer, instance)
        drf = serializers.Serializer.to_representation(serializer, instance)
        assert _typed(fast) == _typed(drf), (type(serializer).__name__, instance)


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_rows_read_as_drf_reads_them(role: str, users: dict[str, User]) -> None:
    user = users[role]
    context = {"request": _request(user)}
    files = list(files_visible_to(user).defer(*user_columns_unlisted("owner")))
    files += list(File.objects.all())  # (no select_related: the owner is read on demand)
    jobs = list(jobs_visible_to(user, for_list=True)) + list(jobs_visible_to(user))
    jobs += list(Job.objects.all())  # (nothing prefetched)
    operations = list(operations_visible_to(user)) + list(Operation.objects.all())
    workspaces = list(workspaces_listed_for(user)) + list(Workspace.objects.all())
    for serializer_class, instances in (
        (FileSerializer, files),
        (JobSerializer, jobs),
        (OperationSerializer, operations),
        (OperationDetailSerializer, operations),
        (WorkspaceSerializer, workspaces),
    ):
        _assert_reads_like_drf(serializer_class(context=context), instances)
    # Without a request in the context (as services serialize), and a naive time.
    job = Job.objects.filter(operation__isnull=False).first()
    assert job is not None
    job.finished_at = datetime.datetime(2026, 1, 2, 3, 4, 5)
    _assert_reads_like_drf(JobSerializer(context={}), [job])


@pytest.mark.parametrize(
    "serializer_class",
    [
        FileSerializer,
        JobSerializer,
        OperationSerializer,
        OperationDetailSerializer,
        WorkspaceSerializer,
    ],
)
def test_fields_built_once_are_the_fields_drf_builds(serializer_class: Any) -> None:
    """Each instance's fields (a copy of those its class built first) are DRF's, field for
    field: the same types and constructor arguments, unbound, not shared between instances."""
    first, second = serializer_class(), serializer_class()
    drf = serializers.ModelSerializer.get_fields(first)
    for fields in (first.get_fields(), second.get_fields()):
        assert list(fields) == list(drf)
        assert [(type(f), repr(f), f.field_name) for f in fields.values()] == [
            (type(f), repr(f), None) for f in drf.values()
        ]
    assert first.fields["id"] is not second.fields["id"]
    assert first.fields["id"].parent is first


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("role", ["viewer", "staff", "outsider"])
def test_listed_workspaces_have_the_counts_and_roles_of_their_rows(
    role: str, users: dict[str, User], workspace: Workspace, make_file: Callable[..., File]
) -> None:
    """``workspaces_listed_for`` joins what correlated subqueries read before: each
    workspace's kept file count (0 without a row), the user's role (None where staff aren't
    members), every visible workspace once."""
    user = users[role] if role in users else User.objects.create_user(email="out@example.org")
    other = Workspace.objects.create(name="Theirs", created_by=users["editor"])
    Membership.objects.create(workspace=other, user=users["editor"], role="owner")
    make_file(other, name="theirs.tsv", owner=users["editor"])
    WorkspaceFileCount.objects.filter(workspace__name="Unannotated").delete()
    my_role = Membership.objects.filter(workspace=OuterRef("pk"), user=user.pk).values("role")
    counted = WorkspaceFileCount.objects.filter(workspace=OuterRef("pk")).values("files")
    expected = workspaces_visible_to(user).annotate(
        file_count=Coalesce(Subquery(counted[:1]), 0), my_role=Subquery(my_role[:1])
    )
    listed: Any = workspaces_listed_for(user)
    rows = sorted((w.pk, w.name, w.file_count, w.my_role) for w in listed)
    assert rows == sorted((w.pk, w.name, w.file_count, w.my_role) for w in expected)
    assert len(rows) == len({row[0] for row in rows})
    if role == "staff":
        assert {row[2] for row in rows} >= {0, 1}
        assert None in {row[3] for row in rows}


RENDERED: list[Any] = [
    {"a": 1, "b": [True, False, None], "c": "héllo — ☃", "d": {"e": {}}},
    {"sep": "line\u2028paragraph\u2029end", "quote": '"\\/\n\t'},
    {
        "aware": datetime.datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=datetime.UTC),
        "aware_no_micro": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "offset": datetime.datetime(
            2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        "naive": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "date": datetime.date(2026, 1, 2),
        "time": datetime.time(3, 4, 5),
    },
    {"uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"), "dec": decimal.Decimal("1.5")},
    {"lazy": gettext_lazy("Files"), 1: "int key", "neg": -(2**63)},
    {"big": 2**70},
    [1, "two", [3]],
    "plain",
    0,
]


@pytest.mark.parametrize("data", RENDERED, ids=range(len(RENDERED)))
def test_fast_json_gives_drf_json_bytes(data: Any) -> None:
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_fast_json_floats_have_drf_values_and_indent_is_drf() -> None:
    data = {"f": [1e16, 1.5e-7, 0.1, -0.0, 3.0, 123456789.125]}
    assert json.loads(FastJSONRenderer().render(data)) == json.loads(JSONRenderer().render(data))
    indented = "application/json; indent=4"
    assert FastJSONRenderer().render(data, indented) == JSONRenderer().render(data, indented)
    assert FastJSONRenderer().render(None) == b""


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("role", ["viewer", "staff"])
@pytest.mark.parametrize(
    "path", ["/api/files/", "/api/jobs/", "/api/operations/", "/api/workspaces/"]
)
def test_list_bodies_are_drf_renderings_of_their_data(
    role: str, path: str, client_for: Callable[[str], APIClient]
) -> None:
    response = client_for(role).get(path, {"page_size": "2"})
    assert response.status_code == 200
    assert response.content == JSONRenderer().render(response.data)
    follow = response.json()["next"]
    while follow:  # every page
        page = client_for(role).get(follow)
        assert page.status_code == 200
        assert page.content == JSONRenderer().render(page.data)
        follow = page.json()["next"]
