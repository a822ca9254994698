"""Idempotency-Key on creates: a retried create answers the first answer and creates nothing
twice; the same key with another request, a malformed key, a key still in use are refused."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient

from api.idempotency import idempotency_keys_expire
from api.models import File, IdempotencyKey, Workspace
from operations.models import Job
from tests.conftest import multipart_file
from tests.harness.buckets import S3Server
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db


def _key() -> str:
    return str(uuid.uuid4())


def _post(client: APIClient, url: str, body: Any, key: str, fmt: str = "json") -> Any:
    return client.post(url, body, format=fmt, HTTP_IDEMPOTENCY_KEY=key)


def _raw(
    client: APIClient, workspace: Workspace, data: bytes, key: str, name: str = "r.bin"
) -> Any:
    url = f"/api/files/upload/?workspace={workspace.pk}&name={name}"
    return client.generic(
        "PUT",
        url,
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _spooled_files() -> list[Path]:
    return [p for p in Path(settings.FILE_UPLOAD_TEMP_DIR).rglob("*") if not p.is_dir()]


def test_workspace_create_retried_with_key_creates_once(
    client_for: Callable[[str], APIClient],
) -> None:
    client, key = client_for("editor"), _key()
    first = _post(client, "/api/workspaces/", {"name": "Once"}, key)
    again = _post(client, "/api/workspaces/", {"name": "Once"}, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Workspace.objects.filter(name="Once").count() == 1
    # Without a key, every request creates.
    client.post("/api/workspaces/", {"name": "Once"}, format="json")
    assert Workspace.objects.filter(name="Once").count() == 2


def test_same_key_other_body_is_refused_naming_the_header(
    client_for: Callable[[str], APIClient],
) -> None:
    client, key = client_for("editor"), _key()
    assert _post(client, "/api/workspaces/", {"name": "A"}, key).status_code == 201
    other = _post(client, "/api/workspaces/", {"name": "B"}, key)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.json()["details"]
    assert not Workspace.objects.filter(name="B").exists()
    # Another user's key of the same text is theirs alone.
    assert _post(client_for("owner"), "/api/workspaces/", {"name": "B"}, key).status_code == 201


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "caf\u00e9"])
def test_malformed_key_is_a_400_naming_the_header(
    client_for: Callable[[str], APIClient], bad: str
) -> None:
    response = _post(client_for("editor"), "/api/workspaces/", {"name": "X"}, bad)
    assert response.status_code == 400, response.content
    assert "Idempotency-Key" in response.json()["details"]
    assert not Workspace.objects.filter(name="X").exists()


def test_job_create_retried_with_key_creates_one_job(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    operation = make_echo_operation()
    client, key = client_for("editor"), _key()
    body = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {"text": "hi"},
    }
    with django_capture_on_commit_callbacks() as enqueued:
        first = _post(client, "/api/jobs/", body, key)
        again = _post(client, "/api/jobs/", body, key)
    assert first.status_code == again.status_code == 201, first.json()
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1
    assert len(enqueued) == 1  # submitted once
    changed = _post(client, "/api/jobs/", {**body, "inputs": {"text": "other"}}, key)
    assert changed.status_code == 422
    assert Job.objects.count() == 1


def test_multipart_upload_retried_with_key_stores_once(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client, key = client_for("editor"), _key()
    data = os.urandom(5 * 1024 * 1024 + 7)

    def send(payload: bytes) -> Any:
        body = {"workspace": str(workspace.pk), "file": multipart_file(payload, "m.bin")}
        return _post(client, "/api/files/", body, key, fmt="multipart")

    first, again = send(data), send(data)
    assert first.status_code == again.status_code == 201, first.json()
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert File.objects.filter(workspace=workspace).count() == 1
    other = send(data[:-1] + b"!")  # same size, other bytes
    assert other.status_code == 422
    assert File.objects.filter(workspace=workspace).count() == 1
    assert not _spooled_files(), "a replayed or refused upload left its spool file"


def test_raw_upload_retried_with_key_stores_once(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client, key = client_for("editor"), _key()
    data = os.urandom(3 * 1024 * 1024)
    first, again = _raw(client, workspace, data, key), _raw(client, workspace, data, key)
    assert first.status_code == again.status_code == 201, first.json()
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert _raw(client, workspace, os.urandom(len(data)), key).status_code == 422
    assert _raw(client, workspace, data, key, name="renamed.bin").status_code == 422
    assert File.objects.filter(workspace=workspace).count() == 1
    assert not _spooled_files()


def test_direct_upload_start_retried_with_key_creates_one_pending_file(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    moto_server: S3Server,
) -> None:
    bucket = f"idem-{uuid.uuid4().hex[:8]}"
    moto_server.boto3_client().create_bucket(Bucket=bucket)
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(moto_server.config()).items() if v is not None}
    }
    client, key = client_for("editor"), _key()
    body = {"workspace": str(workspace.pk), "name": "d.txt", "size": 12}
    first = _post(client, "/api/files/uploads/", body, key)
    again = _post(client, "/api/files/uploads/", body, key)
    assert first.status_code == again.status_code == 201, first.json()
    assert again.json() == first.json()
    assert File.objects.filter(workspace=workspace).count() == 1


def test_key_in_use_by_a_request_still_answering_is_a_409(
    client_for: Callable[[str], APIClient], users: Any
) -> None:
    """A second connection holds the key's claim, as a first request in flight does."""
    if connection.vendor != "postgresql":
        pytest.skip("the in-flight claim is a Postgres advisory lock")
    from api.idempotency import claim_lock_id

    key = _key()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [claim_lock_id(users["editor"], key)])
        busy = _post(client_for("editor"), "/api/workspaces/", {"name": "Busy"}, key)
    finally:
        other.close()  # the first request ends: its claim goes with its connection
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_flight"
    assert "Idempotency-Key" in busy.json()["details"]
    assert not Workspace.objects.filter(name="Busy").exists()
    # Once the first request is over, the retry goes through.
    assert _post(client_for("editor"), "/api/workspaces/", {"name": "Busy"}, key).status_code == 201


def test_keys_expire_and_may_then_be_used_anew(
    client_for: Callable[[str], APIClient],
) -> None:
    client, key = client_for("editor"), _key()
    assert _post(client, "/api/workspaces/", {"name": "Old"}, key).status_code == 201
    IdempotencyKey.objects.update(
        created_at=IdempotencyKey.objects.get().created_at
        - timedelta(seconds=settings.FERRY_IDEMPOTENCY_KEY_TTL_S + 1)
    )
    assert _post(client, "/api/workspaces/", {"name": "New"}, key).status_code == 201
    assert idempotency_keys_expire() == 0  # the expired one was replaced by the new one
    IdempotencyKey.objects.update(
        created_at=IdempotencyKey.objects.get().created_at
        - timedelta(seconds=settings.FERRY_IDEMPOTENCY_KEY_TTL_S + 1)
    )
    assert idempotency_keys_expire() == 1
    assert not IdempotencyKey.objects.exists()


def test_schema_documents_the_header_on_every_create(
    client_for: Callable[[str], APIClient],
) -> None:
    schema = client_for("editor").get("/api/schema/", {"format": "json"}).json()
    creates = {
        ("/api/workspaces/", "post"),
        ("/api/jobs/", "post"),
        ("/api/files/", "post"),
        ("/api/files/upload/", "put"),
        ("/api/files/uploads/", "post"),
    }
    for path, method in creates:
        operation = schema["paths"][path][method]
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in names, (path, method)
        assert "422" in operation["responses"], (path, method)


def test_a_frontend_on_another_origin_may_send_the_key(
    settings: Any, client: Any, client_for: Callable[[str], APIClient]
) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.org"]
    preflight = client.options(
        "/api/jobs/",
        HTTP_ORIGIN="https://app.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key",
    )
    allowed = preflight["Access-Control-Allow-Headers"].lower()
    assert "idempotency-key" in allowed
    assert "x-checksum-sha256" in allowed
    answer = client_for("editor").post(
        "/api/workspaces/",
        {"name": "Cross"},
        format="json",
        HTTP_ORIGIN="https://app.example.org",
        HTTP_IDEMPOTENCY_KEY=_key(),
    )
    assert "idempotent-replayed" in answer["Access-Control-Expose-Headers"].lower()
