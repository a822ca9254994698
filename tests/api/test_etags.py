"""Conditional requests on every resource: an ETag on each detail and list, 304 for a matching
If-None-Match, 412 for a write whose If-Match is stale (changes made by other requests, by
services and by the worker: a job's status through operations.transitions, a file's state
through api.file_states), permissions before preconditions, the schema and CORS."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from api import credentials, services
from api.element_sets.services import element_set_create, element_set_update
from api.file_states import file_transition
from api.models import Credential, File, FileStatus, FileType, Role, User, Workspace
from api.selectors import members_of
from api.urls import router
from api.views.accounts import MeView
from api.views.conditional import ConditionalRequestsMixin
from operations import cromwell_servers
from operations.models import CromwellServer, Job
from operations.services import operation_update
from operations.states import JobStatus
from operations.transitions import transition
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db

CLOSED_PORT_URL = "http://127.0.0.1:9/"  # nothing listens: checks fail at once, locally
ORIGIN = "https://app.example.org"


@dataclass
class Resource:
    """One kind of resource: where it is read and written, by whom, and a change made to it
    outside the client's requests."""

    detail: str
    list: str | None
    reader: str
    writer: str
    change: Callable[[], object]
    patch: dict[str, Any] | None = None
    delete: bool = True
    action: str | None = None  # a POST action on the resource (e.g. cancel)
    list_query: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def resources(
    users: dict[str, User], workspace: Workspace, make_file: Callable[..., File]
) -> dict[str, Resource]:
    owner = users["owner"]
    spare = services.workspace_create(user=owner, name="Spare")
    file = make_file(workspace)
    job = Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=owner,
        executor="dummy",
        inputs={},
    )
    element_set = element_set_create(
        user=owner, workspace=workspace, kind="observation", name="S", elements=[{"id": "s1"}]
    )
    token, _ = services.api_token_create(user=owner, name="laptop")
    credential = Credential.objects.create(
        name="cromwell-cred", kind="cromwell", config={"url": CLOSED_PORT_URL}
    )
    server = CromwellServer.objects.create(name="far", url=CLOSED_PORT_URL)
    membership = members_of(workspace).get(user=users["viewer"])

    def rename_me() -> None:
        owner.full_name = "Changed elsewhere"
        owner.save(update_fields=["full_name"])

    return {
        "workspace": Resource(
            detail=f"/api/workspaces/{spare.pk}/",
            list="/api/workspaces/",
            reader="owner",
            writer="owner",
            change=lambda: services.workspace_update(workspace=spare, name="Renamed elsewhere"),
            patch={"name": "Renamed"},
        ),
        "member": Resource(
            detail=f"/api/workspaces/{workspace.pk}/members/{users['viewer'].pk}/",
            list=f"/api/workspaces/{workspace.pk}/members/",
            reader="viewer",
            writer="owner",
            change=lambda: services.member_update(membership=membership, role=Role.EDITOR),
            patch={"role": "viewer"},
        ),
        "file": Resource(
            detail=f"/api/files/{file.pk}/",
            list="/api/files/",
            list_query={"workspace": str(workspace.pk)},
            reader="viewer",
            writer="editor",
            change=lambda: services.file_update(user=owner, file=file, name="elsewhere.tsv"),
            patch={"name": "renamed.tsv"},
        ),
        "job": Resource(
            detail=f"/api/jobs/{job.pk}/",
            list="/api/jobs/",
            reader="viewer",
            writer="editor",
            # The worker's move: the only writer of a job's status.
            change=lambda: transition(job, JobStatus.SUBMITTED),
            delete=False,
            action="cancel",
        ),
        "set": Resource(
            detail=f"/api/sets/{element_set.pk}/",
            list="/api/sets/",
            reader="viewer",
            writer="editor",
            change=lambda: element_set_update(user=owner, element_set=element_set, name="Else"),
            patch={"name": "Renamed"},
        ),
        "api-token": Resource(
            detail=f"/api/auth/api-tokens/{token.pk}/",
            list="/api/auth/api-tokens/",
            reader="owner",
            writer="owner",
            change=lambda: services.api_token_revoke(token=token),
        ),
        "credential": Resource(
            detail=f"/api/credentials/{credential.pk}/",
            list="/api/credentials/",
            reader="staff",
            writer="staff",
            change=lambda: credentials.credential_update(credential=credential, name="else"),
            patch={"name": "renamed"},
            action="check",
        ),
        "cromwell-server": Resource(
            detail=f"/api/cromwell-servers/{server.pk}/",
            list="/api/cromwell-servers/",
            reader="staff",
            writer="staff",
            change=lambda: cromwell_servers.server_update(server=server, state="draining"),
            patch={"state": "active"},
        ),
        "me": Resource(
            detail="/api/auth/me/",
            list=None,
            reader="owner",
            writer="owner",
            change=rename_me,
            patch={"full_name": "Mine"},
            delete=False,
        ),
    }


@pytest.fixture
def operation_resource() -> Callable[[], tuple[str, Callable[[], object]]]:
    def make() -> tuple[str, Callable[[], object]]:
        operation = make_echo_operation()
        return (
            f"/api/operations/{operation.pk}/",
            lambda: operation_update(operation=operation, hidden=True),
        )

    return make


NAMES = [
    "workspace",
    "member",
    "file",
    "job",
    "set",
    "api-token",
    "credential",
    "cromwell-server",
    "me",
]


def _urls(resource: Resource) -> list[tuple[str, dict[str, str]]]:
    urls: list[tuple[str, dict[str, str]]] = [(resource.detail, {})]
    if resource.list is not None:
        urls.append((resource.list, resource.list_query))
    return urls


@pytest.mark.parametrize("name", NAMES)
def test_detail_and_list_answer_an_etag_and_304_while_unchanged(
    name: str, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    resource = resources[name]
    client = client_for(resource.reader)
    for url, query in _urls(resource):
        first = client.get(url, query)
        assert first.status_code == 200, (url, first.content[:300])
        etag = first["ETag"]
        assert re.fullmatch(r'"[0-9a-f]+"', etag), etag  # strong, opaque
        assert client.get(url, query)["ETag"] == etag  # stable while nothing changes
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = client.get(url, query, HTTP_IF_NONE_MATCH=header)
            assert again.status_code == 304, (url, header)
            assert again.content == b""
            assert again["ETag"] == etag
        head = client.head(url, query, HTTP_IF_NONE_MATCH=etag)
        assert head.status_code == 304
        other = client.get(url, query, HTTP_IF_NONE_MATCH='"not-it"')
        assert other.status_code == 200
        assert other.json() == first.json()


@pytest.mark.parametrize("name", NAMES)
def test_a_change_made_elsewhere_gives_a_new_tag(
    name: str, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    resource = resources[name]
    client = client_for(resource.reader)
    before = {url: client.get(url, query)["ETag"] for url, query in _urls(resource)}
    resource.change()
    for url, query in _urls(resource):
        after = client.get(url, query, HTTP_IF_NONE_MATCH=before[url])
        assert after.status_code == 200, url
        assert after["ETag"] != before[url]
        assert client.get(url, query, HTTP_IF_NONE_MATCH=after["ETag"]).status_code == 304


def test_job_status_set_by_the_worker_changes_detail_and_list_tags(
    resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    client = client_for("viewer")
    job = Job.objects.get()
    tags = []
    for status in (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FINALIZING):
        detail = client.get(f"/api/jobs/{job.pk}/")
        listed = client.get("/api/jobs/")
        tags.append((detail["ETag"], listed["ETag"]))
        assert transition(job, status)
        assert client.get(f"/api/jobs/{job.pk}/", HTTP_IF_NONE_MATCH=tags[-1][0]).status_code == 200
        assert client.get("/api/jobs/", HTTP_IF_NONE_MATCH=tags[-1][1]).status_code == 200
        assert client.get(f"/api/jobs/{job.pk}/").json()["status"] == status.value
    assert len({detail for detail, _ in tags}) == len(tags)


def test_file_state_set_by_file_states_changes_detail_and_list_tags(
    users: dict[str, User], workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    pending = File.objects.create(
        workspace=workspace,
        owner=users["owner"],
        name="result.txt",
        size=3,
        file_type=FileType.TEXT,
        status=FileStatus.PENDING,
        storage_uri="s3://results/result.txt",
    )
    client = client_for("viewer")
    detail = client.get(f"/api/files/{pending.pk}/")
    listed = client.get("/api/files/", {"workspace": str(workspace.pk)})
    assert file_transition(pending, FileStatus.READY)
    now = client.get(f"/api/files/{pending.pk}/", HTTP_IF_NONE_MATCH=detail["ETag"])
    assert now.status_code == 200
    assert now.json()["status"] == FileStatus.READY
    assert now["ETag"] != detail["ETag"]
    relisted = client.get(
        "/api/files/", {"workspace": str(workspace.pk)}, HTTP_IF_NONE_MATCH=listed["ETag"]
    )
    assert relisted.status_code == 200
    assert relisted["ETag"] != listed["ETag"]


def test_list_tags_follow_the_page_the_filters_and_the_user(
    resources: dict[str, Resource], client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    owner = client_for("owner")
    whole = owner.get("/api/workspaces/")["ETag"]
    assert owner.get("/api/workspaces/", {"page_size": 1})["ETag"] != whole
    assert owner.get("/api/workspaces/", {"ordering": "name"})["ETag"] != whole
    # Another member sees the same workspace with their own role: another tag.
    viewer = client_for("viewer").get("/api/workspaces/", HTTP_IF_NONE_MATCH=whole)
    assert viewer.status_code == 200
    assert viewer["ETag"] != whole
    # A new file changes its workspace's file list.
    files = owner.get("/api/files/", {"workspace": str(workspace.pk)})
    services.file_create_from_upload(
        user=User.objects.get(email="owner@example.org"),
        workspace=workspace,
        upload=_spooled(b"new\n"),
        name="new.txt",
    )
    assert (
        owner.get(
            "/api/files/", {"workspace": str(workspace.pk)}, HTTP_IF_NONE_MATCH=files["ETag"]
        ).status_code
        == 200
    )


def _spooled(data: bytes) -> Any:
    from tests.conftest import spool

    return spool(data, "new.txt")


def _writes(resource: Resource) -> list[tuple[str, str, dict[str, Any] | None]]:
    writes: list[tuple[str, str, dict[str, Any] | None]] = []
    if resource.patch is not None:
        writes.append(("patch", resource.detail, resource.patch))
    if resource.action is not None:
        writes.append(("post", f"{resource.detail}{resource.action}/", None))
    if resource.delete:
        writes.append(("delete", resource.detail, None))
    return writes


def _assert_stale(response: Any) -> None:
    assert response.status_code == 412, response.content[:300]
    body = response.json()
    assert body["code"] == "precondition_failed"
    assert "If-Match" in body["details"]
    assert "If-Match" in body["message"]


@pytest.mark.parametrize("name", NAMES)
def test_writes_with_a_stale_if_match_are_refused_and_change_nothing(
    name: str, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    resource = resources[name]
    client = client_for(resource.writer)
    stale = client.get(resource.detail)["ETag"]
    resource.change()
    current = client.get(resource.detail)
    for method, url, body in _writes(resource):
        refused = getattr(client, method)(url, body, format="json", HTTP_IF_MATCH=stale)
        _assert_stale(refused)
        # Also in a list of tags; a weak tag never matches If-Match.
        listed = getattr(client, method)(
            url, body, format="json", HTTP_IF_MATCH=f'"x", {stale}, W/{current["ETag"]}'
        )
        _assert_stale(listed)
        assert client.get(resource.detail).json() == current.json()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("if_match", ["current", "*", None])
def test_writes_with_a_current_if_match_or_none_go_through(
    name: str,
    if_match: str | None,
    resources: dict[str, Resource],
    client_for: Callable[[str], APIClient],
) -> None:
    resource = resources[name]
    client = client_for(resource.writer)
    for method, url, body in _writes(resource):
        headers = {}
        if if_match is not None:
            tag = client.get(resource.detail)["ETag"] if if_match == "current" else "*"
            headers["HTTP_IF_MATCH"] = tag
        answer = getattr(client, method)(url, body, format="json", **headers)
        assert answer.status_code in (200, 202, 204), (method, url, answer.content[:300])


def test_the_operation_catalog_has_tags_and_staff_writes_check_if_match(
    operation_resource: Callable[[], tuple[str, Callable[[], object]]],
    client_for: Callable[[str], APIClient],
) -> None:
    url, retire = operation_resource()
    staff, user = client_for("staff"), client_for("viewer")
    for client, path in ((staff, url), (user, url), (user, "/api/operations/")):
        tag = client.get(path)["ETag"]
        assert client.get(path, HTTP_IF_NONE_MATCH=tag).status_code == 304
    stale = staff.get(url)["ETag"]
    seen_by_user = user.get(url)["ETag"]
    retire()
    _assert_stale(staff.patch(url, {"hidden": False}, format="json", HTTP_IF_MATCH=stale))
    assert staff.get(url, HTTP_IF_NONE_MATCH=stale).status_code == 200
    current = staff.get(url)["ETag"]
    assert (
        staff.patch(url, {"hidden": True}, format="json", HTTP_IF_MATCH=current).status_code == 200
    )
    # Retired: a user no longer sees it, whatever tag they hold.
    assert user.get(url, HTTP_IF_NONE_MATCH=seen_by_user).status_code == 404


@pytest.mark.parametrize("name", ["workspace", "member", "file", "job", "set"])
def test_strangers_get_404_never_304_or_412(
    name: str, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    resource = resources[name]
    tag = client_for(resource.reader).get(resource.detail)["ETag"]
    stranger = client_for("other")
    for header in (tag, "*"):
        assert stranger.get(resource.detail, HTTP_IF_NONE_MATCH=header).status_code == 404
        for method, url, body in _writes(resource):
            for if_match in (tag, '"stale"'):
                answer = getattr(stranger, method)(url, body, format="json", HTTP_IF_MATCH=if_match)
                assert answer.status_code == 404, (method, url)


@pytest.mark.parametrize("name", ["member", "file", "job", "set"])
def test_roles_are_checked_before_if_match(
    name: str, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    """A member who may read but not write gets 403 whether their tag is current or stale."""
    resource = resources[name]
    reader = client_for("viewer")
    tag = reader.get(resource.detail)["ETag"]
    for method, url, body in _writes(resource):
        for if_match in (tag, '"stale"'):
            answer = getattr(reader, method)(url, body, format="json", HTTP_IF_MATCH=if_match)
            assert answer.status_code == 403, (method, url, if_match)


def test_a_get_with_a_stale_if_match_is_412_in_the_error_shape(
    resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    client = client_for("viewer")
    url = resources["job"].detail
    tag = client.get(url)["ETag"]
    assert client.get(url, HTTP_IF_MATCH=tag).status_code == 200
    assert client.get(url, HTTP_IF_MATCH="*").status_code == 200
    resources["job"].change()
    _assert_stale(client.get(url, HTTP_IF_MATCH=tag))


def test_a_malformed_if_match_is_400_naming_the_header(
    resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    resource = resources["file"]
    answer = client_for("editor").patch(
        resource.detail, {"name": "x.tsv"}, format="json", HTTP_IF_MATCH="no quotes"
    )
    assert answer.status_code == 400
    assert "If-Match" in answer.json()["details"]


def test_an_if_match_write_chains_from_the_answer_to_a_get(
    resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    """Read, write with its tag, read again for the next tag: each write goes through once."""
    resource = resources["set"]
    client = client_for("editor")
    for name in ("One", "Two", "Three"):
        tag = client.get(resource.detail)["ETag"]
        assert (
            client.patch(
                resource.detail, {"name": name}, format="json", HTTP_IF_MATCH=tag
            ).status_code
            == 200
        )
        _assert_stale(
            client.patch(resource.detail, {"name": "Late"}, format="json", HTTP_IF_MATCH=tag)
        )
    assert client.get(resource.detail).json()["name"] == "Three"


def test_the_browsable_api_still_works_and_never_answers_304_from_a_json_tag(
    resources: dict[str, Resource], users: dict[str, User]
) -> None:
    client = Client()
    client.force_login(users["owner"])
    resource = resources["workspace"]
    json_tag = client.get(resource.detail, HTTP_ACCEPT="application/json")["ETag"]
    for url in (resource.detail, resource.list or ""):
        page = client.get(url, HTTP_ACCEPT="text/html")
        assert page.status_code == 200
        assert page["Content-Type"].startswith("text/html")
        assert b"Spare" in page.content
        again = client.get(url, HTTP_ACCEPT="text/html", HTTP_IF_NONE_MATCH=json_tag)
        assert again.status_code == 200
        assert page.get("ETag") != json_tag
    # A form post from the browsable API (no If-Match) still writes.
    form = client.patch(
        resource.detail, '{"name": "From the form"}', content_type="application/json"
    )
    assert form.status_code == 200


def test_every_api_view_takes_part() -> None:
    views = [viewset for _, viewset, _ in router.registry] + [MeView]
    assert all(issubclass(view, ConditionalRequestsMixin) for view in views), [
        view.__name__ for view in views if not issubclass(view, ConditionalRequestsMixin)
    ]


def test_the_schema_documents_the_headers_and_answers() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    gets = writes = 0
    for path, item in schema["paths"].items():
        if not path.startswith("/api/"):
            continue  # /healthz and /readyz: probes, answered fresh every time
        if path == "/api/events/":
            continue  # the event stream: resumed with Last-Event-ID, never a 304
        for method, operation in item.items():
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "get":
                gets += 1
                assert "If-None-Match" in headers, path
                assert "304" in operation["responses"], path
                assert "ETag" in operation["responses"]["200"].get("headers", {}), path
            elif method in ("patch", "put", "delete", "post") and (
                ("{" in path and not path.endswith("/members/")) or path == "/api/auth/me/"
            ):
                if path.startswith("/api/files/uploads/"):
                    continue  # pending uploads have no GET of their own to take a tag from
                writes += 1
                assert "If-Match" in headers, (method, path)
                assert "412" in operation["responses"], (method, path)
                error = operation["responses"]["412"]["content"]["application/json"]["schema"]
                assert error["$ref"].endswith("/Error")
    assert gets >= 15
    assert writes >= 15
    assert "If-Match" in {
        p["name"] for p in schema["paths"]["/api/auth/me/"]["patch"].get("parameters", [])
    }


def test_another_origin_may_send_every_conditional_header_and_read_the_etag(
    settings: Any, resources: dict[str, Resource], client_for: Callable[[str], APIClient]
) -> None:
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    wanted = ["if-none-match", "if-match", "last-event-id", "x-checksum-sha256", "idempotency-key"]
    for method in ("GET", "PATCH", "PUT"):
        preflight = Client().options(
            resources["file"].detail,
            HTTP_ORIGIN=ORIGIN,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS=", ".join(["authorization", *wanted]),
        )
        assert preflight.status_code == 200
        assert preflight["Access-Control-Allow-Origin"] == ORIGIN
        allowed = {h.strip() for h in preflight["Access-Control-Allow-Headers"].lower().split(",")}
        assert set(wanted) <= allowed, allowed
    client = client_for("viewer")
    answer = client.get(resources["file"].detail, HTTP_ORIGIN=ORIGIN)
    exposed = {h.strip() for h in answer["Access-Control-Expose-Headers"].lower().split(",")}
    assert {"etag", "retry-after", "idempotent-replayed"} <= exposed
    assert answer["Access-Control-Allow-Origin"] == ORIGIN
    # The 304 carries CORS too, so the page can read that nothing changed.
    unchanged = client.get(
        resources["file"].detail, HTTP_ORIGIN=ORIGIN, HTTP_IF_NONE_MATCH=answer["ETag"]
    )
    assert unchanged.status_code == 304
    assert unchanged["Access-Control-Allow-Origin"] == ORIGIN
    assert "etag" in unchanged["Access-Control-Expose-Headers"].lower()
