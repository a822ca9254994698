"""Sign-in three ways (session, JWT, personal API token), /me, password change, registration."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import services
from api.models import ApiToken, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_jwt_obtain_refresh_and_use(users: dict[str, User]) -> None:
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"email": "owner@example.org", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    tokens = response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = client.get("/api/auth/me/")
    assert me.status_code == 200
    assert me.json()["email"] == "owner@example.org"
    refreshed = APIClient().post(
        "/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()


def test_jwt_wrong_password_is_401_in_error_shape(users: dict[str, User]) -> None:
    response = APIClient().post(
        "/api/auth/token/", {"email": "owner@example.org", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "details"}


def test_anonymous_gets_401_with_www_authenticate() -> None:
    response = APIClient().get("/api/workspaces/")
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert response.json()["code"] == "not_authenticated"


def test_session_login_through_browsable_api_page(users: dict[str, User]) -> None:
    client = APIClient(enforce_csrf_checks=True)
    page = client.get("/api-auth/login/")
    assert page.status_code == 200
    csrf = page.cookies["csrftoken"].value
    response = client.post(
        "/api-auth/login/",
        {
            "username": "owner@example.org",
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf,
            "next": "/api/",
        },
        format="multipart",
    )
    assert response.status_code == 302
    assert response["Location"] == "/api/"
    assert client.get("/api/auth/me/").json()["email"] == "owner@example.org"
    # Writes over a session need the CSRF token.
    assert client.post("/api/workspaces/", {"name": "W"}, format="json").status_code == 403
    ok = client.post(
        "/api/workspaces/",
        {"name": "W"},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert ok.status_code == 201


def test_browsable_api_renders_html(users: dict[str, User]) -> None:
    client = APIClient()
    client.force_authenticate(users["owner"])
    response = client.get("/api/workspaces/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


def test_api_token_shown_once_stored_hashed_and_revocable(users: dict[str, User]) -> None:
    client = APIClient()
    client.force_authenticate(users["owner"])
    created = client.post("/api/auth/api-tokens/", {"name": "laptop"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("fry_")
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert key not in (token.key_hash, token.prefix)
    assert token.key_hash == services.hash_token(key)
    listed = client.get("/api/auth/api-tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["laptop"]
    assert "key" not in listed[0]
    assert "key" not in client.get(f"/api/auth/api-tokens/{token.pk}/").json()

    script = APIClient()
    for scheme in ("Token", "Bearer"):
        script.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert script.get("/api/auth/me/").json()["email"] == "owner@example.org"
    token.refresh_from_db()
    assert token.last_used_at is not None

    assert client.delete(f"/api/auth/api-tokens/{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = script.get("/api/auth/me/")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_an_api_token_is_looked_up_in_one_unordered_query(users: dict[str, User]) -> None:
    _, key = services.api_token_create(user=users["owner"], name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/auth/me/").status_code == 200  # (sets last_used_at)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/auth/me/").json()["email"] == "owner@example.org"
    lookups = [q["sql"] for q in queries.captured_queries if 'FROM "api_apitoken"' in q["sql"]]
    assert len(lookups) == 1, lookups
    assert "ORDER BY" not in lookups[0]  # (the key's hash is unique: nothing to sort)
    assert "LIMIT 1" in lookups[0]


def test_unknown_api_token_is_401() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token fry_not-a-real-token")
    assert client.get("/api/auth/me/").status_code == 401


def test_me_patch_cannot_change_email_or_staff(users: dict[str, User]) -> None:
    client = APIClient()
    client.force_authenticate(users["owner"])
    response = client.patch(
        "/api/auth/me/", {"full_name": "Ada", "email": "x@y.z", "is_staff": True}, format="json"
    )
    assert response.status_code == 200
    user = User.objects.get(pk=users["owner"].pk)
    assert (user.full_name, user.email, user.is_staff) == ("Ada", "owner@example.org", False)


def test_password_change(users: dict[str, User]) -> None:
    client = APIClient()
    client.force_authenticate(users["owner"])
    weak = client.post(
        "/api/auth/password/", {"old_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert weak.status_code == 400
    assert "new_password" in weak.json()["details"]
    wrong = client.post(
        "/api/auth/password/",
        {"old_password": "bad", "new_password": "a-Better-pass-42"},
        format="json",
    )
    assert wrong.status_code == 400
    assert "old_password" in wrong.json()["details"]
    ok = client.post(
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": "a-Better-pass-42"},
        format="json",
    )
    assert ok.status_code == 200
    assert "api_tokens_kept" in ok.json()
    assert User.objects.get(pk=users["owner"].pk).check_password("a-Better-pass-42")


def test_registration_closed_by_default() -> None:
    response = APIClient().post(
        "/api/auth/register/",
        {"email": "n@example.org", "password": "a-Better-pass-42"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "registration_closed"
    assert not User.objects.filter(email="n@example.org").exists()


@override_settings(FERRY_REGISTRATION_OPEN=True)
def test_registration_when_open(users: dict[str, User]) -> None:
    client = APIClient()
    body: dict[str, Any] = {"email": "New@Example.org", "password": "a-Better-pass-42"}
    response = client.post("/api/auth/register/", body, format="json")
    assert response.status_code == 201
    assert response.json()["email"] == "new@example.org"
    again = client.post("/api/auth/register/", body, format="json")
    assert again.status_code == 409
    assert "email" in again.json()["details"]
    bad = client.post(
        "/api/auth/register/", {"email": "not-an-email", "password": "x"}, format="json"
    )
    assert bad.status_code == 400
    assert "email" in bad.json()["details"]


def test_create_user_command(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import CommandError, call_command

    call_command("ferry_create_user", "script@example.org", "--staff")
    out = capsys.readouterr().out
    assert "Password (shown once):" in out
    assert User.objects.get(email="script@example.org").is_staff
    with pytest.raises(CommandError, match="already exists"):
        call_command("ferry_create_user", "script@example.org")


def test_ensure_admin_command(
    db: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command

    monkeypatch.setenv("FERRY_ADMIN_PASSWORD", "Admin-pass-123456")
    call_command("ferry_ensure_admin", "--email", "root@example.org")
    admin = User.objects.get(email="root@example.org")
    assert admin.is_superuser
    assert admin.check_password("Admin-pass-123456")
    call_command("ferry_ensure_admin", "--email", "root@example.org")
    assert "already exists" in capsys.readouterr().out
