"""Sign-in hardening: rate limits (429 + Retry-After) and revocation on password change/deactivation."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from api import services
from api.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-Better-pass-42"


def limit(settings: Any, **rates: str) -> None:
    """Lower some rates for this test (the test settings' defaults are never reached)."""
    settings.FERRY_THROTTLE_RATES = {
        **settings.FERRY_THROTTLE_RATES,
        **{scope.replace("_", "-"): rate for scope, rate in rates.items()},
    }


def sign_in(email: str, password: str, address: str = "10.0.0.1", **extra: Any) -> Any:
    return APIClient().post(
        "/api/auth/token/",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=address,
        **extra,
    )


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


# ------------------------------------------------------------------------------------- throttling


def test_the_issues_25_wrong_passwords_then_the_right_one_is_refused(
    users: dict[str, User], settings: Any
) -> None:
    from config.settings import base

    settings.FERRY_THROTTLE_RATES = base.FERRY_THROTTLE_RATES  # the shipped defaults
    answers = [sign_in("owner@example.org", f"guess-{n}").status_code for n in range(25)]
    assert answers[:20] == [401] * 20
    assert set(answers[20:]) == {429}
    right = sign_in("owner@example.org", PASSWORD)
    assert_throttled(right)
    assert "sign-in attempts" in right.json()["message"]


def test_sign_in_is_limited_per_account_whatever_the_address(
    users: dict[str, User], settings: Any
) -> None:
    limit(settings, sign_in_account="3/hour")
    for n in range(3):
        assert sign_in("owner@example.org", "wrong", address=f"10.0.1.{n}").status_code == 401
    # The account is normalized as stored: case and spaces don't make a new counter.
    assert_throttled(sign_in("  Owner@Example.ORG ", PASSWORD, address="10.0.2.1"))
    # Sign-in through the session form counts on the same counter.
    assert_throttled(
        APIClient().post(
            "/api-auth/login/",
            {"username": "owner@example.org", "password": PASSWORD},
            format="multipart",
            REMOTE_ADDR="10.0.2.2",
        )
    )
    assert sign_in("editor@example.org", PASSWORD, address="10.0.2.1").status_code == 200


def test_sign_in_is_limited_per_address_whatever_the_account(
    users: dict[str, User], settings: Any
) -> None:
    limit(settings, sign_in_address="3/hour")
    for n in range(3):
        assert sign_in(f"someone-{n}@example.org", "wrong").status_code == 401
    assert_throttled(sign_in("owner@example.org", PASSWORD))
    assert sign_in("owner@example.org", PASSWORD, address="10.9.9.9").status_code == 200


def test_x_forwarded_for_is_not_trusted_without_a_proxy(
    users: dict[str, User], settings: Any
) -> None:
    limit(settings, sign_in_address="2/hour")
    for n in range(2):
        sign_in(f"x{n}@example.org", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert_throttled(sign_in("owner@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99"))


def test_behind_one_proxy_the_address_it_appends_is_counted(
    users: dict[str, User], settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    limit(settings, sign_in_address="2/hour")
    proxy = {"address": "127.0.0.1"}
    for n in range(2):  # a client that forges its own X-Forwarded-For entry each time
        sign_in("x@example.org", "wrong", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.5", **proxy)
    assert_throttled(
        sign_in("owner@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)
    )
    ok = sign_in("owner@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy)
    assert ok.status_code == 200


def test_token_refresh_is_limited(users: dict[str, User], settings: Any) -> None:
    refresh = sign_in("owner@example.org", PASSWORD).json()["refresh"]
    limit(settings, token_refresh_account="2/hour")
    client = APIClient()
    for n in range(2):
        answer = client.post(
            "/api/auth/token/refresh/", {"refresh": refresh}, REMOTE_ADDR=f"10.0.3.{n}"
        )
        assert answer.status_code == 200
    again = client.post("/api/auth/token/refresh/", {"refresh": refresh}, REMOTE_ADDR="10.0.3.9")
    assert_throttled(again)
    assert "token refreshes" in again.json()["message"]
    limit(settings, token_refresh_account="", token_refresh_address="1/hour")
    client.post("/api/auth/token/refresh/", {"refresh": "forged"}, REMOTE_ADDR="10.0.4.1")
    assert_throttled(
        client.post("/api/auth/token/refresh/", {"refresh": refresh}, REMOTE_ADDR="10.0.4.1")
    )


def test_password_change_is_limited(users: dict[str, User], settings: Any) -> None:
    limit(settings, password_change_account="2/hour")
    client = APIClient()
    client.force_authenticate(users["owner"])
    body = {"old_password": "wrong", "new_password": NEW_PASSWORD}
    for _ in range(2):
        assert client.post("/api/auth/password/", body).status_code == 400
    answer = client.post("/api/auth/password/", {**body, "old_password": PASSWORD})
    assert_throttled(answer)
    assert "password changes" in answer.json()["message"]
    assert User.objects.get(pk=users["owner"].pk).check_password(PASSWORD)


@override_settings(FERRY_REGISTRATION_OPEN=True)
def test_registration_is_limited_per_email_and_per_address(settings: Any) -> None:
    limit(settings, register_account="1/hour", register_address="3/hour")
    client = APIClient()
    body = {"email": "new@example.org", "password": NEW_PASSWORD}
    assert client.post("/api/auth/register/", body, REMOTE_ADDR="10.0.5.1").status_code == 201
    assert_throttled(
        client.post(
            "/api/auth/register/", {**body, "email": "NEW@example.org"}, REMOTE_ADDR="10.0.5.2"
        )
    )
    for n in range(2):
        other = {**body, "email": f"n{n}@example.org"}
        assert client.post("/api/auth/register/", other, REMOTE_ADDR="10.0.5.1").status_code == 201
    late = {**body, "email": "late@example.org"}
    assert_throttled(client.post("/api/auth/register/", late, REMOTE_ADDR="10.0.5.1"))
    assert not User.objects.filter(email="late@example.org").exists()


@pytest.mark.parametrize(
    ("path", "page"), [("/api-auth/login/", "/api-auth/login/"), ("/admin/login/", "/admin/login/")]
)
def test_session_sign_in_forms_are_limited_too(
    users: dict[str, User], settings: Any, path: str, page: str
) -> None:
    users["staff"].is_superuser = True
    users["staff"].save()
    limit(settings, sign_in_account="2/hour")
    client = APIClient(enforce_csrf_checks=True)
    csrf = client.get(page).cookies["csrftoken"].value
    form = {"username": "staff@example.org", "csrfmiddlewaretoken": csrf}
    for n in range(2):
        # An extra field naming another account doesn't move the attempts to another counter.
        wrong = {**form, "password": "wrong", "email": f"decoy-{n}@example.org"}
        assert client.post(path, wrong, format="multipart").status_code == 200  # form + error
    right = client.post(path, {**form, "password": PASSWORD}, format="multipart")
    assert_throttled(right)
    assert "_auth_user_id" not in client.session


def test_the_admin_password_change_is_limited_too(users: dict[str, User], settings: Any) -> None:
    """The admin's password-change form checks the old password: with a stolen session it
    would be a password oracle without the limit POST /api/auth/password/ has."""
    users["staff"].is_superuser = True
    users["staff"].save()
    limit(settings, password_change_account="2/hour")
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="staff@example.org", password=PASSWORD)
    csrf = client.get("/admin/password_change/").cookies["csrftoken"].value
    form = {"csrfmiddlewaretoken": csrf, "new_password1": NEW_PASSWORD}
    form["new_password2"] = NEW_PASSWORD
    for _ in range(2):
        wrong = client.post(
            "/admin/password_change/", {**form, "old_password": "wrong"}, format="multipart"
        )
        assert wrong.status_code == 200  # the form again, with its error
    right = client.post(
        "/admin/password_change/", {**form, "old_password": PASSWORD}, format="multipart"
    )
    assert_throttled(right)
    users["staff"].refresh_from_db()
    assert users["staff"].check_password(PASSWORD)


def test_database_cache_keeps_the_counters_for_every_worker(
    users: dict[str, User], settings: Any
) -> None:
    from config.settings import base

    assert base.CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "ferry_cache",
        }
    }
    call_command("createcachetable", verbosity=0)
    limit(settings, sign_in_account="2/hour")
    for _ in range(2):
        assert sign_in("owner@example.org", "wrong").status_code == 401
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM ferry_cache")
        keys = [row[0] for row in cursor.fetchall()]
    assert any("sign-in-account" in key for key in keys)
    assert_throttled(sign_in("owner@example.org", PASSWORD))


# ------------------------------------------------------------------------------------- revocation


def change_password(client: APIClient) -> Any:
    return client.post(
        "/api/auth/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )


def test_password_change_revokes_refresh_and_access_tokens_but_keeps_api_tokens(
    users: dict[str, User],
) -> None:
    before = sign_in("owner@example.org", PASSWORD).json()
    _token, api_key = services.api_token_create(user=users["owner"], name="script")
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {before['access']}")
    changed = change_password(bearer)
    assert changed.status_code == 200
    assert changed.json()["api_tokens_kept"] == 1
    assert "API token" in changed.json()["message"]

    refreshed = APIClient().post("/api/auth/token/refresh/", {"refresh": before["refresh"]})
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "token_revoked"
    assert bearer.get("/api/auth/me/").status_code == 401
    scripted = APIClient()
    scripted.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")
    assert scripted.get("/api/auth/me/").status_code == 200

    after = sign_in("owner@example.org", NEW_PASSWORD).json()
    fresh = APIClient().post("/api/auth/token/refresh/", {"refresh": after["refresh"]})
    assert fresh.status_code == 200
    renewed = APIClient()
    renewed.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh.json()['access']}")
    assert renewed.get("/api/auth/me/").status_code == 200


def test_password_change_ends_other_sessions_and_keeps_this_one(users: dict[str, User]) -> None:
    this, other = APIClient(), APIClient()
    for client in (this, other):
        assert client.login(username="owner@example.org", password=PASSWORD)
        assert client.get("/api/auth/me/").status_code == 200
    assert change_password(this).status_code == 200
    assert this.get("/api/auth/me/").status_code == 200
    assert other.get("/api/auth/me/").status_code in (401, 403)


def test_deactivation_revokes_tokens_sessions_and_api_tokens(users: dict[str, User]) -> None:
    tokens = sign_in("owner@example.org", PASSWORD).json()
    _token, api_key = services.api_token_create(user=users["owner"], name="script")
    session = APIClient()
    assert session.login(username="owner@example.org", password=PASSWORD)
    User.objects.filter(pk=users["owner"].pk).update(is_active=False)

    refreshed = APIClient().post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 401
    for header in (f"Bearer {tokens['access']}", f"Token {api_key}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/auth/me/").status_code == 401
    assert session.get("/api/auth/me/").status_code in (401, 403)
    assert sign_in("owner@example.org", PASSWORD).status_code == 401
