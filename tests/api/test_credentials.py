"""Credentials: encrypted at rest, write-only in the API, checked when saved, key rotation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from rest_framework.test import APIClient

from api import credentials
from api.crypto import SecretUnreadable, decrypt_secret
from api.models import Credential

pytestmark = pytest.mark.django_db
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def s3_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "lab-bucket",
        "kind": "s3",
        "config": {"location": "s3://lab/ferry/", "endpoint_url": "http://127.0.0.1:9"},
        "secret": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET},
        **extra,
    }


def test_secret_is_encrypted_and_never_returned(
    client_for: Callable[[str], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(credentials.CHECKERS, "s3", lambda config, secret: [])
    client = client_for("staff")
    created = client.post("/api/credentials/", s3_body(), format="json")
    assert created.status_code == 201, created.json()
    for response in (
        created,
        client.get("/api/credentials/"),
        client.get(f"/api/credentials/{created.json()['id']}/"),
    ):
        assert SECRET not in response.content.decode()
        assert "AKIDEXAMPLE" not in response.content.decode()
    body = created.json()
    assert body["has_secret"] is True
    assert "secret" not in body
    assert body["check_ok"] is True
    assert body["checked_at"]
    stored = Credential.objects.get(pk=body["id"])
    assert SECRET not in stored.secret_ciphertext
    assert SECRET not in repr(stored) + str(stored)
    assert decrypt_secret(stored.secret_ciphertext)["secret_access_key"] == SECRET


def test_failed_check_is_saved_with_reason_and_no_leak(
    client_for: Callable[[str], APIClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def leaky(config: dict[str, Any], secret: dict[str, Any]) -> list[str]:
        raise RuntimeError(f"signature mismatch for {secret['secret_access_key']}")

    monkeypatch.setitem(credentials.CHECKERS, "s3", leaky)
    with caplog.at_level(logging.DEBUG):
        created = client_for("staff").post("/api/credentials/", s3_body(), format="json")
    assert created.status_code == 201
    assert created.json()["check_ok"] is False
    assert "RuntimeError" in created.json()["check_message"]
    assert SECRET not in created.content.decode()
    assert SECRET not in caplog.text


def test_bad_credential_input_names_the_field_not_the_value(
    client_for: Callable[[str], APIClient],
) -> None:
    client = client_for("staff")
    unknown = client.post("/api/credentials/", s3_body(secret={"password": SECRET}), format="json")
    assert unknown.status_code == 400
    assert "secret.password" in unknown.json()["details"]
    assert SECRET not in unknown.content.decode()
    no_location = client.post("/api/credentials/", s3_body(config={}), format="json")
    assert no_location.status_code == 400
    assert "config.location" in no_location.json()["details"]
    bad_kind = client.post("/api/credentials/", s3_body(kind="ftp"), format="json")
    assert bad_kind.status_code == 400
    assert "kind" in bad_kind.json()["details"]
    assert not Credential.objects.exists()


def test_update_secret_and_kind_is_fixed(client_for: Callable[[str], APIClient]) -> None:
    client = client_for("staff")
    created = client.post("/api/credentials/", s3_body(), format="json").json()
    assert created["check_ok"] is False  # nothing listens on 127.0.0.1:9: saved, with the reason
    assert created["check_message"]
    assert SECRET not in created["check_message"]
    url = f"/api/credentials/{created['id']}/"
    changed = client.patch(
        url, {"secret": {"access_key_id": "A2", "secret_access_key": "S2"}}, format="json"
    )
    assert changed.status_code == 200
    assert (
        decrypt_secret(Credential.objects.get(pk=created["id"]).secret_ciphertext)["access_key_id"]
        == "A2"
    )
    refused = client.patch(url, {"kind": "gcs"}, format="json")
    assert refused.status_code == 400
    assert "kind" in refused.json()["details"]
    duplicate = client.post("/api/credentials/", s3_body(), format="json")
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()["details"]


def test_key_rotation(settings: Any, users: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERRY_CREDENTIAL_KEYS = [old]
    credential = credentials.credential_create(
        user=users["staff"],
        name="c",
        kind="s3",
        config={"location": "s3://b/"},
        secret={"access_key_id": "A", "secret_access_key": SECRET},
    )
    before = Credential.objects.get(pk=credential.pk).secret_ciphertext
    settings.FERRY_CREDENTIAL_KEYS = [new, old]
    call_command("ferry_rotate_credential_keys")
    after = Credential.objects.get(pk=credential.pk).secret_ciphertext
    assert after != before
    settings.FERRY_CREDENTIAL_KEYS = [new]  # the old key is gone: rotated secrets still read
    assert decrypt_secret(after)["secret_access_key"] == SECRET
    settings.FERRY_CREDENTIAL_KEYS = [old]
    with pytest.raises(SecretUnreadable, match="FERRY_CREDENTIAL_KEYS"):
        decrypt_secret(after)


def test_s3_credentials_checked_against_a_real_server(
    client_for: Callable[[str], APIClient], seaweedfs: Any
) -> None:
    """SeaweedFS checks signatures: the right keys work, a wrong secret is reported, not leaked."""
    bucket = "cred-check"
    seaweedfs.boto3_client().create_bucket(Bucket=bucket)
    client = client_for("staff")
    config = {
        "location": f"s3://{bucket}/ferry/",
        "endpoint_url": seaweedfs.endpoint_url,
        "region": "us-east-1",
    }
    good = client.post(
        "/api/credentials/",
        {
            "name": "good",
            "kind": "s3",
            "config": config,
            "secret": {
                "access_key_id": seaweedfs.access_key_id,
                "secret_access_key": seaweedfs.secret_access_key,
            },
        },
        format="json",
    )
    assert good.status_code == 201, good.json()
    assert good.json()["check_ok"] is True, good.json()
    wrong = "not-the-secret-0123456789"
    bad = client.post(
        "/api/credentials/",
        {
            "name": "bad",
            "kind": "s3",
            "config": config,
            "secret": {"access_key_id": seaweedfs.access_key_id, "secret_access_key": wrong},
        },
        format="json",
    )
    assert bad.status_code == 201
    assert bad.json()["check_ok"] is False
    assert bad.json()["check_message"]
    assert wrong not in bad.content.decode()
    mismatch = client.post(
        "/api/credentials/",
        {
            "name": "gs-for-s3",
            "kind": "s3",
            "config": {**config, "location": "gs://some-bucket/"},
            "secret": {},
        },
        format="json",
    )
    assert mismatch.status_code == 400
    assert "s3://" in mismatch.json()["details"]["config.location"][0]


@pytest.mark.slow
def test_environment_credentials_need_no_stored_secret(
    client_for: Callable[[str], APIClient], seaweedfs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a stored secret, boto3's own chain is used (here: the environment; on a cloud
    host: the instance or task role)."""
    bucket = "env-credentials"
    seaweedfs.boto3_client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_access_key)
    created = client_for("staff").post(
        "/api/credentials/",
        {
            "name": "from-env",
            "kind": "s3",
            "config": {
                "location": f"s3://{bucket}/",
                "endpoint_url": seaweedfs.endpoint_url,
                "region": "us-east-1",
            },
            "secret": {},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["has_secret"] is False
    assert created.json()["check_ok"] is True, created.json()["check_message"]
