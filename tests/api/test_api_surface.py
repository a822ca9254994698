"""One error shape, OpenAPI schema and docs, CORS, health/readiness, admin, settings guards."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import File, User, Workspace
from operations.monitoring import beat

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_malformed_json_is_400_with_position(client_for: Callable[[str], APIClient]) -> None:
    response = client_for("owner").post(
        "/api/workspaces/", '{"name": ', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error"
    assert "line 1 column" in body["message"]


def test_wrong_types_name_the_field(client_for: Callable[[str], APIClient]) -> None:
    response = client_for("owner").post("/api/workspaces/", {"name": ["a", "b"]}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["details"]
    response = client_for("owner").post("/api/workspaces/", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["details"]


def test_unknown_api_path_is_json_404(client_for: Callable[[str], APIClient]) -> None:
    response = Client().get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unexpected_error_is_500_in_error_shape(
    client_for: Callable[[str], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.views import workspaces

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(workspaces.services, "workspace_create", explode)
    response = client_for("owner").post("/api/workspaces/", {"name": "x"}, format="json")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "secret" not in response.content.decode()


def test_schema_is_valid_and_documents_errors(client_for: Callable[[str], APIClient]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            "/dev/null",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    response = client_for("anonymous").get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert "Error" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if "security" in operation and {} not in operation["security"]:
                assert {"401", "403"} <= codes, f"{method} {path} lacks 401/403"
            if "{" in path:
                assert "404" in codes, f"{method} {path} lacks 404"
            if method in ("post", "put", "patch"):
                assert "400" in codes, f"{method} {path} lacks 400"


def test_swagger_ui_serves_local_assets() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html


def test_cors_for_configured_origin(settings: Any, users: dict[str, User]) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.org"]
    client = Client()
    preflight = client.options(
        "/api/workspaces/",
        HTTP_ORIGIN="https://app.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.org"
    other = client.get("/healthz", HTTP_ORIGIN="https://evil.example.org")
    assert "Access-Control-Allow-Origin" not in other


def test_json_get_has_etag_and_304(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client = client_for("owner")
    first = client.get(f"/api/workspaces/{workspace.pk}/")
    assert first.has_header("ETag")
    assert (
        client.get(f"/api/workspaces/{workspace.pk}/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code
        == 304
    )


def test_health_and_readiness(settings: Any, tmp_path: Path) -> None:
    assert Client().get("/healthz").json() == {"status": "ok"}
    beat("a-live-worker")
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
        "worker": "ok",
        "executor:local-docker": "ok",
    }
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the storage folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "files": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked)},
        },
    }
    down = Client().get("/readyz")
    assert down.status_code == 503
    assert down.json()["details"]["storage"][0].startswith("unreachable")


def test_admin_has_every_model(file: File) -> None:
    superuser = User.objects.create_superuser(email="root@example.org", password="x")
    client = Client()
    client.force_login(superuser)
    from api.models import ApiToken, Membership
    from operations.models import Job

    for model in (User, ApiToken, Workspace, Membership, File, Job):
        assert model in admin.site._registry, model
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("admin:api_file_change", args=[file.pk])).status_code == 200
    assert client.get(reverse("admin:api_user_add")).status_code == 200
    anonymous = Client().get(reverse("admin:api_file_changelist"))
    assert anonymous.status_code == 302


def _settings_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "FERRY_CREDENTIAL_KEYS")
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_settings_refuse_unsafe_configuration() -> None:
    no_key = _settings_check({})
    assert no_key.returncode != 0
    assert "SECRET_KEY" in no_key.stderr
    debug = _settings_check({"SECRET_KEY": "k" * 50, "DEBUG": "true"})
    assert debug.returncode != 0
    assert "DEBUG" in debug.stderr
    no_fernet = _settings_check({"SECRET_KEY": "k" * 50})
    assert no_fernet.returncode != 0
    assert "FERRY_CREDENTIAL_KEYS" in no_fernet.stderr
    key = "A" * 43 + "="
    ok = _settings_check({"SECRET_KEY": "k" * 50, "FERRY_CREDENTIAL_KEYS": key})
    assert ok.returncode == 0, ok.stderr


def test_state_machine_table() -> None:
    from operations.states import ACTIVE, ALLOWED, TERMINAL, JobStatus, can_transition

    assert set(ALLOWED) == set(JobStatus)
    assert all(not ALLOWED[s] for s in TERMINAL)
    assert all(JobStatus.CANCELLING in ALLOWED[s] for s in ACTIVE if s != JobStatus.CANCELLING)
    assert can_transition("queued", "submitted")
    assert not can_transition("succeeded", "running")
