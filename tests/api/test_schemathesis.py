"""Schemathesis against every operation of the served OpenAPI schema, in-process over WSGI on the
test Postgres database: as a normal user and as staff, no response may be a 5xx and every
documented response must match its schema. Plus what it doesn't generate: deeply nested and
oversized bodies on every operation that takes one.

Generated requests really run. They create workspaces, files, tokens and the like inside each
test's transaction (rolled back after it). Jobs are created only as queued rows: these tests'
executor routing names an executor that no worker runs here. Cromwell URLs and bucket endpoints
are pointed at a closed loopback port and operation sources at an empty folder, so nothing
leaves this machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from api import services
from api.element_sets.services import element_set_create
from api.models import Credential, File, FileStatus, FileType, Role
from api.parsers import MAX_JSON_DEPTH
from operations.models import CromwellServer, Job
from operations.monitoring import beat
from tests.conftest import make_user, spool
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db

APP = get_wsgi_application()
# Generation doesn't feed on responses (ids, timestamps differ between runs): with the fixed seed
# and derandomized Hypothesis, every run sends the same requests.
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261206,
        "phases": {
            # The schema's examples (e.g. a direct upload's) are for people trying the API in
            # Swagger; they can't be combined with @SCHEMA.given, and the fuzzing covers them.
            "examples": {"enabled": False},
            "fuzzing": {
                "extra-data-sources": {"responses": False},
                "error-feedback": {"enabled": False},
            },
        },
    }
)
# The event stream runs for an hour under ASGI (and answers 503 stream_needs_asgi under this
# WSGI app): tests/api/test_events_stream.py follows it over a real ASGI server instead.
NOT_FUZZED = {("GET", "/api/events/")}
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", APP, config=CONFIG).exclude(
    path="/api/events/", method="GET"
)
CHECKS = [not_a_server_error, response_schema_conformance]
# Per operation and role; derandomized, so every run sends the same requests.
MAX_EXAMPLES = 20
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # discard: nothing listens, a refused connection


@pytest.fixture
def world(
    db: Any, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    # As Django's test client does: the app must not close the test's connection (and with it
    # the transaction the test runs in) at the end of each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Folders named as operation sources resolve under an empty folder.
    sources = tmp_path / "sources"
    sources.mkdir()
    monkeypatch.chdir(sources)
    # Jobs are queued for an executor that no worker in these tests runs.
    # (Besides, a job is enqueued on commit, and these tests' transactions never commit.)
    settings.EXECUTORS = {**settings.EXECUTORS, "unrun": settings.EXECUTORS["local-docker"]}
    settings.EXECUTOR_ROUTING = {"docker": "unrun", "wdl": "unrun"}
    try:
        yield World(sources)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


class World:
    """A normal user and a staff user, each with something of every kind to point ids at."""

    def __init__(self, sources: Path) -> None:
        self.sources = sources
        beat("fuzz-worker")  # a worker is alive: GET /readyz answers 200
        self.user = make_user("user@example.org", full_name="User")
        self.staff = make_user("staff@example.org", is_staff=True, full_name="Staff")
        self.member = make_user("member@example.org")
        self.workspace = services.workspace_create(user=self.user, name="Fuzzed")
        services.member_add(workspace=self.workspace, email=self.member.email, role=Role.VIEWER)
        self.file = services.file_create_from_upload(
            user=self.user,
            workspace=self.workspace,
            upload=spool(b"a\tb\n1\t2\n", "t.tsv"),
            name="t.tsv",
        )
        # A pending direct upload with nothing signed: completing it answers 409 before any
        # bucket would be asked.
        self.pending = File.objects.create(
            workspace=self.workspace,
            owner=self.user,
            name="pending.bin",
            size=1,
            file_type=FileType.BINARY,
            status=FileStatus.PENDING,
            storage_uri="s3://fuzz-bucket/pending.bin",
        )
        self.operation = make_echo_operation()
        self.element_set = element_set_create(
            user=self.user,
            workspace=self.workspace,
            kind="observation",
            name="Fuzzed samples",
            elements=[{"id": "s1"}],
        )
        self.job = Job.objects.create(
            operation=self.operation,
            workspace=self.workspace,
            owner=self.user,
            executor="unrun",
            inputs={},
        )
        self.credential = Credential.objects.create(
            name="fuzz-cromwell", kind="cromwell", config={"url": CLOSED_PORT_URL}
        )
        self.server = CromwellServer.objects.create(name="fuzz", url=CLOSED_PORT_URL)
        self.tokens = {
            role: services.api_token_create(user=user, name="schemathesis")
            for role, user in (("user", self.user), ("staff", self.staff))
        }
        # A second token per user for the generated requests to read or revoke.
        self.spare_tokens = {
            role: services.api_token_create(user=user, name="spare")[0]
            for role, user in (("user", self.user), ("staff", self.staff))
        }

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[role][1]}"}

    def real_ids(self, role: str) -> dict[str, str]:
        """Path parameter -> the id of an object that exists, by path prefix."""
        return {
            "/api/workspaces/{workspace_pk}": str(self.workspace.pk),
            "/api/workspaces/{id}": str(self.workspace.pk),
            "members/{user_id}": str(self.member.pk),
            "/api/files/{id}": str(self.file.pk),
            "/api/files/uploads/{id}": str(self.pending.pk),
            "/api/jobs/{id}": str(self.job.pk),
            "/api/operations/{id}": str(self.operation.pk),
            "/api/credentials/{id}": str(self.credential.pk),
            "/api/cromwell-servers/{id}": str(self.server.pk),
            "/api/sets/{id}": str(self.element_set.pk),
            "/api/auth/api-tokens/{id}": str(self.spare_tokens[role].pk),
        }


def _keep_local(case: Any, world: World) -> None:
    """Point what the server would contact at this machine: URLs and bucket endpoints at a
    closed loopback port, operation sources under an empty folder."""
    body = case.body
    if not isinstance(body, dict):
        return
    for key in ("url",):
        if isinstance(body.get(key), str):
            parts = urlsplit(body[key])
            body[key] = f"http://127.0.0.1:9{parts.path or '/'}"
    config = body.get("config")
    if isinstance(config, dict):
        for key in list(config):
            if "url" in str(key).lower() or "endpoint" in str(key).lower():
                config[key] = CLOSED_PORT_URL
        # Bucket credentials are checked on save: against loopback, not the providers.
        endpoint = {"s3": "endpoint_url", "gcs": "api_endpoint"}.get(str(body.get("kind")))
        if endpoint is not None:
            config[endpoint] = CLOSED_PORT_URL
    source = body.get("source")
    if isinstance(source, str):
        body["source"] = str(world.sources / source.lstrip("/~").replace("..", "_"))


def _use_real_ids(case: Any, world: World, role: str) -> None:
    """Name objects that exist, in the path and in the body's references."""
    path = case.operation.path
    for prefix, value in world.real_ids(role).items():
        name = prefix.rsplit("{", 1)[1].rstrip("}")
        if prefix in path and case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    if isinstance(case.body, dict):
        references = {
            "workspace": world.workspace.pk,
            "operation": world.operation.pk,
            "other": world.element_set.pk,  # combining sets
        }
        for key, pk in references.items():
            if key in case.body:
                case.body[key] = str(pk)


def _fuzz(case: Any, world: World, role: str, real: bool) -> None:
    _keep_local(case, world)
    if real:
        _use_real_ids(case, world, role)
    case.call_and_validate(headers=world.headers(role), checks=CHECKS, app=APP)


@SCHEMA.parametrize()
@SCHEMA.given(real=st.booleans())
@FUZZ_SETTINGS
def test_every_operation_as_a_user(case: Any, real: bool, world: World) -> None:
    _fuzz(case, world, "user", real)


@SCHEMA.parametrize()
@SCHEMA.given(real=st.booleans())
@FUZZ_SETTINGS
def test_every_operation_as_staff(case: Any, real: bool, world: World) -> None:
    _fuzz(case, world, "staff", real)


# ------------------------------------------------------------- bodies schemathesis won't make


def _operations_with_json_bodies() -> Iterator[tuple[str, str]]:
    for path, methods in SCHEMA.raw_schema["paths"].items():
        for method, operation in methods.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                yield method.upper(), path


BODY_OPERATIONS = sorted(_operations_with_json_bodies())


def _concrete(path: str, world: World) -> str:
    """The path with every parameter naming an object that exists."""
    for prefix, value in world.real_ids("staff").items():
        if prefix in path:
            path = path.replace("{" + prefix.rsplit("{", 1)[1], value)
    return path


@pytest.fixture
def staff_client(world: World) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=world.headers("staff")["Authorization"])
    return client


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_deeply_nested_body_is_400_on_every_operation(
    method: str, path: str, world: World, staff_client: APIClient
) -> None:
    body = "[" * 1000 + "]" * 1000
    response = staff_client.generic(
        method, _concrete(path, world), body, content_type="application/json"
    )
    assert response.status_code == 400, (path, response.content[:300])
    assert response.json()["code"] == "too_deep"
    assert "body" in response.json()["details"]
    assert str(MAX_JSON_DEPTH) in response.json()["message"]


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_oversized_body_is_413_on_every_operation(
    method: str, path: str, world: World, staff_client: APIClient, settings: Any
) -> None:
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    response = staff_client.generic(
        method, _concrete(path, world), body, content_type="application/json"
    )
    assert response.status_code == 413, (path, response.content[:300])
    assert response.json()["code"] == "too_large"
    assert "body" in response.json()["details"]


def test_every_operation_is_fuzzed() -> None:
    """The fuzzing covers the whole schema: no operation is filtered out but the stream."""
    methods = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
    in_schema = {
        (method.upper(), path)
        for path, item in SCHEMA.raw_schema["paths"].items()
        for method in item
        if method in methods
    }
    operations = [result.ok() for result in SCHEMA.get_all_operations()]  # type: ignore[union-attr]
    fuzzed = {(op.method.upper(), op.path) for op in operations}
    assert NOT_FUZZED.issubset(in_schema)
    assert fuzzed == in_schema - NOT_FUZZED
    assert len(fuzzed) >= 50
