"""Bad input answers 4xx in the one error shape, naming what is wrong; never a 500."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from api import services
from api.models import ApiToken, Credential, File, User, Workspace
from api.parsers import MAX_JSON_DEPTH
from tests.conftest import PASSWORD, multipart_file

pytestmark = pytest.mark.django_db


def nested(depth: int) -> str:
    """A JSON document whose innermost value sits ``depth`` containers deep."""
    return '{"name": ' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"


def assert_error_shape(body: dict[str, Any]) -> None:
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["message"], str)
    assert isinstance(body["details"], dict)


# ------------------------------------------------------------------------------ JSON bodies


@pytest.mark.parametrize("path", ["/api/workspaces/", "/api/jobs/"])
def test_json_nested_1000_deep_is_400_naming_the_body(
    path: str, client_for: Callable[[str], APIClient]
) -> None:
    body = nested(1000)
    assert len(body) < 2100
    response = client_for("owner").post(path, body, content_type="application/json")
    assert response.status_code == 400
    data = response.json()
    assert_error_shape(data)
    assert data["code"] == "too_deep"
    assert "body" in data["details"]
    assert str(MAX_JSON_DEPTH) in data["message"]


def test_json_at_the_depth_limit_is_parsed(client_for: Callable[[str], APIClient]) -> None:
    # The limit counts containers: the outer object plus 63 lists is 64 deep.
    ok = client_for("owner").post(
        "/api/workspaces/", nested(MAX_JSON_DEPTH), content_type="application/json"
    )
    assert ok.status_code == 400
    assert "name" in ok.json()["details"]
    deeper = client_for("owner").post(
        "/api/workspaces/", nested(MAX_JSON_DEPTH + 1), content_type="application/json"
    )
    assert deeper.status_code == 400
    assert deeper.json()["code"] == "too_deep"


def test_brackets_inside_strings_do_not_count_as_depth(
    client_for: Callable[[str], APIClient],
) -> None:
    name = '[[[[{{{{"\\"' * 10
    response = client_for("owner").post(
        "/api/workspaces/", json.dumps({"name": name}), content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["name"] == name


@pytest.mark.parametrize(
    "body",
    [
        '"' + '\\"' * 1_000_000,  # one unterminated string full of escaped quotes
        '"' + '\\"' * 1_000_000 + "\\",
        "[]" * 1_000_000,
        '"' * 2_000_000,
    ],
)
def test_depth_check_takes_linear_time_on_hostile_bodies(
    body: str, client_for: Callable[[str], APIClient]
) -> None:
    # A string-skipping regex that rescans from every inner quote takes hours on the first two.
    started = time.monotonic()
    response = client_for("owner").post("/api/workspaces/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] in ("parse_error", "invalid")
    assert time.monotonic() - started < 10


def test_json_body_over_the_upload_limit_is_413(
    client_for: Callable[[str], APIClient], settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"name": "x", "description": "d" * 20_000})
    response = client_for("owner").post("/api/workspaces/", body, content_type="application/json")
    assert response.status_code == 413
    data = response.json()
    assert_error_shape(data)
    assert data["code"] == "too_large"
    assert "body" in data["details"]
    assert not Workspace.objects.exists()


def test_form_body_over_the_upload_limit_is_413(users: dict[str, User], settings: Any) -> None:
    # Django's form parsing raises RequestDataTooBig inside the DRF view here.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = Client()
    client.force_login(users["owner"])
    response = client.post(
        "/api/workspaces/",
        "name=x&description=" + "d" * 20_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert_error_shape(response.json())
    assert response.json()["code"] == "too_large"


def test_form_body_over_the_upload_limit_is_413_outside_drf(settings: Any) -> None:
    # The sign-in page is a Django view: the CSRF middleware reads the form before any view,
    # so Django's RequestDataTooBig reaches handler400, not DRF's exception handler.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = _get_new_csrf_string()
    response = client.post(
        "/api-auth/login/",
        "username=a&password=" + "p" * 20_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert_error_shape(response.json())
    assert response.json()["code"] == "too_large"
    assert "body" in response.json()["details"]


def test_multipart_field_over_the_upload_limit_is_413(
    client_for: Callable[[str], APIClient], workspace: Workspace, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {
        "workspace": str(workspace.pk),
        "name": "n" * 20_000,
        "file": multipart_file(b"data", "d.txt"),
    }
    response = client_for("owner").post("/api/files/", body, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not File.objects.exists()


# ------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("config", [True, "x", 3, ["s3://bucket/p"]])
def test_credential_config_must_be_an_object(
    config: Any, client_for: Callable[[str], APIClient]
) -> None:
    body = {"name": "c", "kind": "s3", "config": config, "secret": {}}
    response = client_for("staff").post("/api/credentials/", body, format="json")
    assert response.status_code == 400
    assert_error_shape(response.json())
    assert "config" in response.json()["details"]
    assert not Credential.objects.exists()


@pytest.mark.parametrize(
    ("kind", "location"),
    [("s3", "gs://bucket/p"), ("gcs", "s3://bucket/p"), ("s3", "/srv/data"), ("s3", "bucket")],
)
def test_credential_location_scheme_must_match_its_kind(
    kind: str, location: str, client_for: Callable[[str], APIClient]
) -> None:
    body = {"name": "c", "kind": kind, "config": {"location": location}}
    response = client_for("staff").post("/api/credentials/", body, format="json")
    assert response.status_code == 400
    assert "config.location" in response.json()["details"]
    assert not Credential.objects.exists()


# ---------------------------------------------------------------------- query parameters


@pytest.mark.parametrize("ordering", ["owner__password", "-owner__password", "name,nope", "?"])
def test_unknown_ordering_is_400_naming_it(
    ordering: str, client_for: Callable[[str], APIClient], file: File
) -> None:
    response = client_for("owner").get("/api/files/", {"ordering": ordering})
    assert response.status_code == 400
    assert_error_shape(response.json())
    assert "ordering" in response.json()["details"]


def test_known_ordering_still_works(
    client_for: Callable[[str], APIClient], workspace: Workspace, make_file: Any
) -> None:
    make_file(workspace, name="b.tsv")
    make_file(workspace, name="a.tsv")
    response = client_for("owner").get("/api/files/", {"ordering": "name"})
    assert response.status_code == 200
    assert [f["name"] for f in response.json()["results"]] == ["a.tsv", "b.tsv"]


@pytest.mark.parametrize("page_size", ["-1", "abc", "0", "1.5", ""])
def test_bad_page_size_is_400_naming_it(
    page_size: str, client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = client_for("owner").get("/api/workspaces/", {"page_size": page_size})
    assert response.status_code == 400
    assert "page_size" in response.json()["details"]


def test_page_size_above_the_maximum_is_capped(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = client_for("owner").get("/api/workspaces/", {"page_size": "100000"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_bad_cursor_is_400_naming_it(client_for: Callable[[str], APIClient]) -> None:
    response = client_for("owner").get("/api/workspaces/", {"cursor": "garbage"})
    assert response.status_code == 400
    assert "cursor" in response.json()["details"]


def test_jobs_filter_by_hidden_workspace_answers_like_an_unknown_one(
    client_for: Callable[[str], APIClient], users: dict[str, User]
) -> None:
    hidden = services.workspace_create(user=users["other"], name="Not yours")
    client = client_for("owner")
    unknown = client.get("/api/jobs/", {"workspace": "00000000-0000-0000-0000-000000000000"})
    someone_elses = client.get("/api/jobs/", {"workspace": str(hidden.pk)})
    assert unknown.status_code == someone_elses.status_code == 400
    assert "workspace" in someone_elses.json()["details"]
    unknown_message = unknown.json()["details"]["workspace"]
    assert someone_elses.json()["details"]["workspace"] != []
    assert str(hidden.pk) not in json.dumps(unknown_message)
    mine = services.workspace_create(user=users["owner"], name="Mine")
    assert client.get("/api/jobs/", {"workspace": str(mine.pk)}).status_code == 200


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2337-06-08T19:40:00-20:45", 200),  # ISO 8601 allows it; Postgres refuses the offset
        ("9999-12-31T23:00:00-05:00", 400),  # past year 9999 in UTC
        ("0001-01-01T00:30:00+01:00", 400),  # before year 1 in UTC
        ("yesterday", 400),
    ],
)
def test_file_date_filters_take_any_iso_offset(
    value: str, status: int, client_for: Callable[[str], APIClient], file: File
) -> None:
    for param in ("created_after", "created_before"):
        response = client_for("owner").get("/api/files/", {param: value})
        assert response.status_code == status, response.content
        if status == 400:
            assert param in response.json()["details"]


@pytest.mark.parametrize("source", ["x" * 300, "a/" + "y" * 300 + "/b", "z" * 1001])
def test_operation_source_too_long_for_a_path_is_400(
    source: str, client_for: Callable[[str], APIClient], tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    response = client_for("staff").post("/api/operations/", {"source": source}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert "source" in body["details"] or body["code"] == "invalid_source"


# --------------------------------------------------------------------------- authentication


def test_bad_jwt_refresh_is_in_the_error_shape(users: dict[str, User]) -> None:
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": "nope"}, format="json")
    assert response.status_code == 401
    data = response.json()
    assert_error_shape(data)
    assert data["code"] == "token_not_valid"
    assert "ErrorDetail" not in data["message"]
    assert "{" not in data["message"]


def test_bad_jwt_bearer_is_in_the_error_shape(users: dict[str, User]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = client.get("/api/workspaces/")
    assert response.status_code == 401
    data = response.json()
    assert_error_shape(data)
    assert data["code"] == "token_not_valid"
    assert "ErrorDetail" not in data["message"]
    assert "{" not in data["message"]


def test_access_token_used_as_refresh_is_in_the_error_shape(users: dict[str, User]) -> None:
    tokens = APIClient().post(
        "/api/auth/token/", {"email": "owner@example.org", "password": PASSWORD}, format="json"
    )
    response = APIClient().post(
        "/api/auth/token/refresh/", {"refresh": tokens.json()["access"]}, format="json"
    )
    assert response.status_code == 401
    assert "ErrorDetail" not in response.json()["message"]


def test_api_token_expiring_in_the_past_is_refused(
    client_for: Callable[[str], APIClient],
) -> None:
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = client_for("owner").post(
        "/api/auth/api-tokens/", {"name": "old", "expires_at": past}, format="json"
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["details"]
    assert not ApiToken.objects.exists()
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = client_for("owner").post(
        "/api/auth/api-tokens/", {"name": "new", "expires_at": future}, format="json"
    )
    assert response.status_code == 201


# ---------------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("filename", ["../../etc/passwd", "a/b.txt", "..\\x.txt", ".."])
def test_multipart_file_name_with_a_path_is_refused_like_the_raw_upload(
    filename: str, client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client = client_for("owner")
    # Built by hand: Django's test client would send only the name's last path segment.
    boundary = "ferry-test-boundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="workspace"\r\n\r\n'
        f"{workspace.pk}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        f"data\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    multipart = client.generic(
        "POST",
        "/api/files/",
        body,  # type: ignore[arg-type]
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    raw = client.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name={filename}",
        b"data",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert multipart.status_code == raw.status_code == 400
    assert multipart.json()["code"] == raw.json()["code"]
    assert multipart.json()["message"] == raw.json()["message"]
    assert "file" in multipart.json()["details"]
    assert not File.objects.exists()


# ------------------------------------------------------------------------- response bodies


def test_created_workspace_has_file_count(client_for: Callable[[str], APIClient]) -> None:
    response = client_for("owner").post("/api/workspaces/", {"name": "New"}, format="json")
    assert response.status_code == 201
    assert response.json()["file_count"] == 0
    assert response.json()["role"] == "owner"


def test_schema_documents_what_the_api_answers(client_for: Callable[[str], APIClient]) -> None:
    schema = yaml.safe_load(Client().get("/api/schema/").content)
    paths = schema["paths"]
    # Every list refuses a bad cursor, page_size or ordering with 400.
    for path, methods in paths.items():
        get = methods.get("get")
        params = {p["name"] for p in (get or {}).get("parameters", [])}
        if "page_size" in params:
            assert "400" in get["responses"], path
    # PUT on a file always answered 405: only PATCH changes a file.
    assert "put" not in paths["/api/files/{id}/"]
    # Registration answers 403 while it is closed.
    assert "403" in paths["/api/auth/register/"]["post"]["responses"]
    closed = Client().post(
        "/api/auth/register/",
        {"email": "new@example.org", "password": "a-long-passphrase-4"},
        content_type="application/json",
    )
    assert closed.status_code == 403
    # Downloads come with the file's own content type.
    assert "*/*" in paths["/api/files/{id}/download/"]["get"]["responses"]["200"]["content"]


def test_download_content_type_is_the_files(
    client_for: Callable[[str], APIClient], file: File
) -> None:
    response = client_for("owner").get(f"/api/files/{file.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] != "application/octet-stream"
