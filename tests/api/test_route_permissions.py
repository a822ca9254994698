"""Every route in the URL conf, for every role, from one table.

A route that is added without a row here fails ``test_every_route_has_a_row``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from api import services
from api.credentials import credential_create
from api.element_sets.services import element_set_create
from api.models import File, User, Workspace
from operations.models import CromwellServer, Job
from tests.conftest import PASSWORD, ROLES, multipart_file
from tests.operations_fixtures import make_echo_operation

ALL = dict.fromkeys(ROLES)


def by_role(
    anonymous: int, owner: int, editor: int, viewer: int, other: int, staff: int
) -> dict[str, int]:
    return {
        "anonymous": anonymous,
        "owner": owner,
        "editor": editor,
        "viewer": viewer,
        "other": other,
        "staff": staff,
    }


def same(code: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, code)


def signed_in(code: int) -> dict[str, int]:
    return {**dict.fromkeys(ROLES, code), "anonymous": 401}


@dataclass
class World:
    users: dict[str, User]
    workspace: Workspace
    file: File
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    expect: dict[str, int]
    body: Callable[[World], Any] | None = None
    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    fmt: str = "json"
    query: Callable[[World], str] = lambda w: ""
    headers: dict[str, str] = field(default_factory=dict)


ws_kw = lambda w: {"pk": w.workspace.pk}  # noqa: E731
file_kw = lambda w: {"pk": w.file.pk}  # noqa: E731

TABLE: dict[str, list[Call]] = {
    "token-obtain": [
        Call(
            "post",
            same(200),
            body=lambda w: {"email": w.users["owner"].email, "password": PASSWORD},
        )
    ],
    "token-refresh": [
        Call(
            "post",
            same(200),
            body=lambda w: {"refresh": str(RefreshToken.for_user(w.users["owner"]))},
        )
    ],
    # The stream: every signed-in user gets their own events; narrowed to a workspace, only its
    # members (and staff). This test client speaks WSGI, where the stream answers 503
    # stream_needs_asgi once the checks pass (tests/api/test_events_stream.py streams over ASGI).
    "event-stream": [
        Call("get", signed_in(503)),
        Call(
            "get",
            by_role(401, 503, 503, 503, 404, 503),
            query=lambda w: f"?workspace={w.workspace.pk}",
        ),
        Call("post", signed_in(405)),
    ],
    "event-stream-token": [Call("post", signed_in(201)), Call("get", signed_in(405))],
    "me": [
        Call("get", signed_in(200)),
        Call("patch", signed_in(200), body=lambda w: {"full_name": "N"}),
    ],
    "password-change": [
        # A wrong old password proves the request reached the service (400), not refused before.
        Call(
            "post",
            signed_in(400),
            body=lambda w: {"old_password": "wrong", "new_password": "x-Long-enough-9"},
        ),
    ],
    "register": [
        Call(
            "post",
            same(403),
            body=lambda w: {"email": "new@example.org", "password": "x-Long-enough-9"},
        )
    ],
    "workspace-list": [
        Call("get", signed_in(200)),
        Call("post", signed_in(201), body=lambda w: {"name": "New"}),
    ],
    "workspace-detail": [
        Call("get", by_role(401, 200, 200, 200, 404, 200), kwargs=ws_kw),
        Call(
            "patch",
            by_role(401, 200, 200, 403, 404, 200),
            kwargs=ws_kw,
            body=lambda w: {"name": "Renamed"},
        ),
        # The workspace holds a file, so owners reach the "not empty" conflict.
        Call("delete", by_role(401, 409, 403, 403, 404, 409), kwargs=ws_kw),
    ],
    "workspace-member-list": [
        Call(
            "get",
            by_role(401, 200, 200, 200, 404, 200),
            kwargs=lambda w: {"workspace_pk": w.workspace.pk},
        ),
        Call(
            "post",
            by_role(401, 201, 403, 403, 404, 201),
            kwargs=lambda w: {"workspace_pk": w.workspace.pk},
            body=lambda w: {"email": w.extras["newcomer"].email, "role": "viewer"},
        ),
    ],
    "workspace-member-detail": [
        Call("get", by_role(401, 200, 200, 200, 404, 200), kwargs=lambda w: _member_kw(w)),
        Call(
            "patch",
            by_role(401, 200, 403, 403, 404, 200),
            kwargs=lambda w: _member_kw(w),
            body=lambda w: {"role": "viewer"},
        ),
        Call("delete", by_role(401, 204, 403, 403, 404, 204), kwargs=lambda w: _member_kw(w)),
    ],
    "file-list": [
        Call("get", signed_in(200)),
        Call(
            "post",
            by_role(401, 201, 201, 403, 400, 201),
            fmt="multipart",
            body=lambda w: {
                "workspace": str(w.workspace.pk),
                "file": multipart_file(b"x\n", "x.txt"),
            },
        ),
    ],
    "file-upload": [
        Call(
            "put",
            by_role(401, 201, 201, 403, 400, 201),
            fmt="raw",
            body=lambda w: b"hello\n",
            query=lambda w: f"?workspace={w.workspace.pk}&name=hello.txt",
        ),
    ],
    "file-detail": [
        Call("get", by_role(401, 200, 200, 200, 404, 200), kwargs=file_kw),
        Call(
            "patch",
            by_role(401, 200, 200, 403, 404, 200),
            kwargs=file_kw,
            body=lambda w: {"name": "r.tsv"},
        ),
        Call("delete", by_role(401, 204, 204, 403, 404, 204), kwargs=file_kw),
    ],
    "file-download": [
        Call("get", by_role(401, 200, 200, 200, 404, 200), kwargs=file_kw),
        # Local files are streamed even when a signed-URL redirect is asked for.
        Call(
            "get",
            by_role(401, 200, 200, 200, 404, 200),
            kwargs=file_kw,
            query=lambda w: "?redirect=1",
        ),
    ],
    # The test workspace stores files locally, which has no signed URLs: 409 past permissions.
    "file-direct-upload-list": [
        Call(
            "post",
            by_role(401, 409, 409, 403, 400, 409),
            body=lambda w: {"workspace": str(w.workspace.pk), "name": "a.txt", "size": 3},
        ),
    ],
    # The pending upload points into a bucket no location covers: 400 past permissions.
    "file-direct-upload-complete": [
        Call(
            "post",
            by_role(401, 400, 400, 403, 404, 400),
            kwargs=lambda w: {"pk": w.extras["pending"].pk},
            body=lambda w: {},
        ),
    ],
    # Not a multipart upload: 409 past permissions.
    "file-direct-upload-parts": [
        Call(
            "post",
            by_role(401, 409, 409, 403, 404, 409),
            kwargs=lambda w: {"pk": w.extras["pending"].pk},
            body=lambda w: {"part_numbers": [1]},
        ),
    ],
    "file-import-object": [
        Call(
            "post",
            by_role(401, 400, 400, 403, 400, 400),
            body=lambda w: {"workspace": str(w.workspace.pk), "uri": "s3://unregistered/x.txt"},
        ),
    ],
    "element-set-list": [
        Call("get", signed_in(200)),
        Call(
            "post",
            by_role(401, 201, 201, 403, 400, 201),
            body=lambda w: {
                "workspace": str(w.workspace.pk),
                "kind": "observation",
                "name": "New",
                "elements": [{"id": "s1"}],
            },
        ),
    ],
    "element-set-detail": [
        Call("get", by_role(401, 200, 200, 200, 404, 200), kwargs=lambda w: _set_kw(w)),
        Call(
            "patch",
            by_role(401, 200, 200, 403, 404, 200),
            kwargs=lambda w: _set_kw(w),
            body=lambda w: {"name": "Renamed"},
        ),
        Call("delete", by_role(401, 204, 204, 403, 404, 204), kwargs=lambda w: _set_kw(w)),
    ],
    "element-set-combine": [
        Call(
            "post",
            by_role(401, 201, 201, 403, 404, 201),
            kwargs=lambda w: _set_kw(w),
            body=lambda w: {
                "operation": "union",
                "other": str(w.extras["element_set"].pk),
                "name": "Both",
            },
        ),
    ],
    "api-token-list": [
        Call("get", signed_in(200)),
        Call("post", signed_in(201), body=lambda w: {"name": "ci"}),
    ],
    "api-token-detail": [
        # Tokens are personal: only their holder sees them, staff included.
        Call(
            "get",
            by_role(401, 200, 404, 404, 404, 404),
            kwargs=lambda w: {"pk": w.extras["token"].pk},
        ),
        Call(
            "delete",
            by_role(401, 204, 404, 404, 404, 404),
            kwargs=lambda w: {"pk": w.extras["token"].pk},
        ),
    ],
    "operation-list": [
        Call("get", signed_in(200)),
        # Staff reach ingestion, which refuses a folder that doesn't exist (400).
        Call(
            "post",
            by_role(401, 403, 403, 403, 403, 400),
            body=lambda w: {"source": "/nonexistent/op"},
        ),
    ],
    "operation-detail": [
        Call("get", signed_in(200), kwargs=lambda w: {"pk": w.extras["operation"].pk}),
        Call(
            "patch",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["operation"].pk},
            body=lambda w: {"hidden": True},
        ),
    ],
    "job-list": [
        Call("get", signed_in(200)),
        Call(
            "post",
            by_role(401, 201, 201, 403, 400, 201),
            body=lambda w: {
                "operation": str(w.extras["operation"].pk),
                "workspace": str(w.workspace.pk),
                "inputs": {"text": "hi"},
            },
        ),
    ],
    "job-detail": [
        Call(
            "get",
            by_role(401, 200, 200, 200, 404, 200),
            kwargs=lambda w: {"pk": w.extras["job"].pk},
        )
    ],
    "job-cancel": [
        Call(
            "post",
            by_role(401, 202, 202, 403, 404, 202),
            kwargs=lambda w: {"pk": w.extras["job"].pk},
        )
    ],
    "job-logs": [
        Call(
            "get",
            by_role(401, 200, 200, 200, 404, 200),
            kwargs=lambda w: {"pk": w.extras["job"].pk},
        )
    ],
    "credential-list": [
        Call("get", by_role(401, 403, 403, 403, 403, 200)),
        Call(
            "post",
            by_role(401, 403, 403, 403, 403, 201),
            body=lambda w: {
                "name": "c2",
                "kind": "cromwell",
                "config": {"url": "http://127.0.0.1:1"},
                "secret": {"token": "t"},
            },
        ),
    ],
    "credential-detail": [
        Call(
            "get",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["credential"].pk},
        ),
        Call(
            "patch",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["credential"].pk},
            body=lambda w: {"name": "renamed"},
        ),
        Call(
            "delete",
            by_role(401, 403, 403, 403, 403, 204),
            kwargs=lambda w: {"pk": w.extras["credential"].pk},
        ),
    ],
    "credential-check": [
        Call(
            "post",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["credential"].pk},
        ),
    ],
    "cromwell-server-list": [
        Call("get", by_role(401, 403, 403, 403, 403, 200)),
        # Nothing listens on port 1: created all the same, recorded as unhealthy.
        Call(
            "post",
            by_role(401, 403, 403, 403, 403, 201),
            body=lambda w: {"name": "c2", "url": "http://127.0.0.1:1"},
        ),
    ],
    "cromwell-server-detail": [
        Call(
            "get",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["cromwell"].pk},
        ),
        Call(
            "patch",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["cromwell"].pk},
            body=lambda w: {"state": "draining"},
        ),
        Call(
            "delete",
            by_role(401, 403, 403, 403, 403, 204),
            kwargs=lambda w: {"pk": w.extras["cromwell"].pk},
        ),
    ],
    "cromwell-server-check": [
        Call(
            "post",
            by_role(401, 403, 403, 403, 403, 200),
            kwargs=lambda w: {"pk": w.extras["cromwell"].pk},
        ),
    ],
    "api-root": [Call("get", signed_in(200))],
    "schema": [Call("get", same(200))],
    "swagger-ui": [Call("get", same(200))],
    "rest_framework:login": [Call("get", same(200))],
    "rest_framework:logout": [Call("post", same(200))],
    "healthz": [Call("get", same(200))],
    # Open to everyone; 503 here because this world has no worker heartbeat
    # (tests/api/test_metrics.py has the 200 case).
    "readyz": [Call("get", same(503))],
    # The test client comes from 127.0.0.1, in FERRY_METRICS_NETWORKS by default.
    "metrics": [Call("get", same(200))],
    "executor-list": [Call("get", by_role(401, 403, 403, 403, 403, 200))],
    # The status page: a sign-in form for anyone signed out, the workspace picker for the rest.
    "status-page": [Call("get", same(200))],
}


def _member_kw(w: World) -> dict[str, Any]:
    return {"workspace_pk": w.workspace.pk, "user_id": w.users["editor"].pk}


def _set_kw(w: World) -> dict[str, Any]:
    return {"pk": w.extras["element_set"].pk}


def _route_names(patterns: list[Any], namespace: str | None = None) -> Iterator[str]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _route_names(entry.url_patterns, entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}:{entry.name}" if namespace else str(entry.name)


def test_every_route_has_a_row() -> None:
    names = {n for n in _route_names(get_resolver().url_patterns) if not n.startswith("admin:")}
    missing = sorted(names - TABLE.keys())
    assert not missing, (
        f"routes without a permission row in tests/api/test_route_permissions.py: {missing}"
    )
    assert not sorted(TABLE.keys() - names), "rows for routes that no longer exist"


CASES = [
    (name, i, call.method, role)
    for name, calls in TABLE.items()
    for i, call in enumerate(calls)
    for role in ROLES
]


@pytest.mark.parametrize(
    ("name", "index", "method", "role"), CASES, ids=[f"{n}-{m}-{r}" for n, _, m, r in CASES]
)
def test_route_permission(
    name: str,
    index: int,
    method: str,
    role: str,
    users: dict[str, User],
    workspace: Workspace,
    file: File,
    client_for: Callable[[str], APIClient],
) -> None:
    world = World(users=users, workspace=workspace, file=file)
    world.extras["newcomer"] = User.objects.create_user(
        email="newcomer@example.org", password=PASSWORD
    )
    world.extras["token"], _ = services.api_token_create(user=users["owner"], name="t")
    world.extras["operation"] = make_echo_operation()
    world.extras["credential"] = credential_create(
        user=users["staff"],
        name="c1",
        kind="cromwell",
        config={"url": "http://127.0.0.1:1"},
        secret={},
    )
    world.extras["cromwell"] = CromwellServer.objects.create(name="c1", url="http://127.0.0.1:1")
    world.extras["pending"] = File.objects.create(
        workspace=workspace,
        owner=users["owner"],
        name="p.txt",
        size=3,
        file_type="text",
        storage_uri="s3://unregistered/p.txt",
        pending_upload={},
    )
    world.extras["job"] = Job.objects.create(
        operation=world.extras["operation"],
        workspace=workspace,
        owner=users["owner"],
        executor="local-docker",
    )
    world.extras["element_set"] = element_set_create(
        user=users["owner"],
        workspace=workspace,
        kind="observation",
        name="Samples",
        elements=[{"id": "s1"}, {"id": "s2"}],
    )
    call = TABLE[name][index]
    url = reverse(name, kwargs=call.kwargs(world)) + call.query(world)
    client = client_for(role)
    body = call.body(world) if call.body else None
    if call.fmt == "raw":
        response = client.generic(
            call.method.upper(),
            url,
            body or b"",  # type: ignore[arg-type]
            content_type="application/octet-stream",
        )
    elif call.fmt == "multipart":
        response = getattr(client, call.method)(url, body, format="multipart")
    else:
        response = (
            getattr(client, call.method)(url, body, format="json")
            if body is not None
            else getattr(client, call.method)(url)
        )
    expected = call.expect[role]
    assert response.status_code == expected, (
        f"{method.upper()} {url} as {role}: {response.status_code}, expected {expected}: "
        f"{getattr(response, 'data', None) or response.content[:300]!r}"
    )
    if response.status_code >= 400 and response.get("Content-Type", "").startswith(
        "application/json"
    ):
        assert set(response.json()) == {"code", "message", "details"}
