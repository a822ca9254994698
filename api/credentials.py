"""Credentials: save (encrypted), check that they work, rotate the encryption key."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from .crypto import decrypt_secret, encrypt_secret, rotate
from .exceptions import ApplicationError, Conflict, field_error
from .models import Credential, CredentialKind, User

logger = logging.getLogger(__name__)

# What each kind needs: non-secret config keys (required ones first) and secret keys.
REQUIRED_CONFIG: dict[str, tuple[str, ...]] = {
    CredentialKind.S3: ("location",),
    CredentialKind.GCS: ("location",),
    CredentialKind.CROMWELL: ("url",),
}
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    CredentialKind.S3: ("access_key_id", "secret_access_key", "session_token"),
    CredentialKind.GCS: ("service_account_json",),
    CredentialKind.CROMWELL: ("username", "password", "token"),
}

# kind -> function(config, secret) -> list of problems ("" list: it works). Filled in by the
# modules that can talk to each kind of service (buckets, Cromwell).
CHECKERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = {}

# function(credential) -> why it can't be deleted now ("" when nothing of that kind uses it).
# Filled in by the apps whose models use credentials (operations: its Cromwell servers), so
# this module needs no import of them.
CREDENTIAL_USES: list[Callable[[Credential], str]] = []

_SCHEMES: dict[str, str] = {CredentialKind.S3: "s3", CredentialKind.GCS: "gs"}


def bucket_config(kind: str, config: dict[str, Any], secret: dict[str, Any]) -> tuple[Any, Any]:
    """The bucket location and connection settings a bucket credential stands for."""
    from .storage.buckets import BucketConfig, parse_uri

    ref = parse_uri(str(config.get("location", "")))
    if ref.scheme != _SCHEMES[kind]:
        raise ApplicationError(
            f"A {kind} credential's location must start with {_SCHEMES[kind]}://.",
            details={"config.location": [f"Use a {_SCHEMES[kind]}:// URI."]},
        )
    # Not connection settings: where the location is, and whether every user may use it.
    values = {
        k: v for k, v in config.items() if k not in ("location", "shared", "workspace_storage")
    }
    values.update({k: v for k, v in secret.items() if k != "service_account_json"})
    if secret.get("service_account_json"):
        values["credentials_json"] = secret["service_account_json"]
    return ref, BucketConfig.from_dict(values)


def _check_bucket(kind: str) -> Callable[[dict[str, Any], dict[str, Any]], list[str]]:
    def check(config: dict[str, Any], secret: dict[str, Any]) -> list[str]:
        from .storage.buckets import client_for

        ref, connection = bucket_config(kind, config, secret)
        return list(client_for(ref.scheme, connection).check_access(ref))

    return check


CHECKERS[CredentialKind.S3] = _check_bucket(CredentialKind.S3)
CHECKERS[CredentialKind.GCS] = _check_bucket(CredentialKind.GCS)


def _config_problems(kind: str, config: dict[str, Any], details: dict[str, list[str]]) -> None:
    """Required config keys present; a bucket location is a URI of the kind's scheme."""
    for key in REQUIRED_CONFIG.get(kind, ()):
        if not str(config.get(key) or "").strip():
            details.setdefault(f"config.{key}", []).append(f"Required for {kind} credentials.")
    location = str(config.get("location") or "").strip()
    if kind not in _SCHEMES or not location:
        return
    scheme, sep, bucket = location.partition("://")
    if not sep or scheme.lower() != _SCHEMES[kind] or not bucket.strip("/"):
        details.setdefault("config.location", []).append(
            f"A {kind} credential's location is a {_SCHEMES[kind]}://bucket/prefix URI."
        )


def _secret_problems(kind: str, secret: dict[str, Any], details: dict[str, list[str]]) -> None:
    """Only the kind's secret keys, each a string."""
    for key in secret:
        if key not in SECRET_KEYS.get(kind, ()):
            # Name the key, never its value.
            details.setdefault(f"secret.{key}", []).append(
                f"Unknown for {kind} credentials; expected some of: {', '.join(SECRET_KEYS[kind])}."
            )
        elif not isinstance(secret[key], str):
            details.setdefault(f"secret.{key}", []).append("Must be a string.")


def _validate(kind: str, config: dict[str, Any], secret: dict[str, Any] | None) -> None:
    details: dict[str, list[str]] = {}
    if not isinstance(config, dict):
        raise ApplicationError(
            "config: Must be an object.", details={"config": ["Must be an object."]}
        )
    _config_problems(kind, config, details)
    if secret is not None:
        _secret_problems(kind, secret, details)
    if details:
        first = next(iter(details))
        raise ApplicationError(f"{first}: {details[first][0]}", details=details)


def _refuse_shared_over_storage(location: str, credential_pk: Any) -> None:
    """A shared location must not overlap any place workspace files are stored."""
    from .storage import locations

    for prefix, what in locations.workspace_storage_prefixes(except_credential=credential_pk):
        if locations.overlap(location, prefix):
            raise field_error(
                "config.location",
                f"{location} is shared (every user may import from it) and overlaps {prefix}, "
                f"where workspace files are stored ({what}).",
                code="location_refused",
            )


def _shared_locations(except_pk: Any) -> list[tuple[str, str]]:
    """Every location all users may import from, with where it is declared."""
    from django.conf import settings

    candidates = Credential.objects.filter(kind__in=list(_SCHEMES))
    if except_pk is not None:
        candidates = candidates.exclude(pk=except_pk)
    shared = [
        (str(other.config.get("location")), f"credential {other.name}")
        for other in candidates
        if other.config.get("shared") and other.config.get("location")
    ]
    shared += [(uri, "FERRY_IMPORT_LOCATIONS") for uri in settings.FERRY_IMPORT_LOCATIONS]
    return shared


def _refuse_storage_over_shared(location: str, credential_pk: Any) -> None:
    """A workspace storage location must not overlap any location every user may import from."""
    from .storage import locations

    for prefix, what in _shared_locations(credential_pk):
        if locations.overlap(location, prefix):
            raise field_error(
                "config.location",
                f"{location} is for workspace storage and overlaps {prefix}, from which every "
                f"user may import ({what}).",
                code="location_refused",
            )


def _check_location_roles(kind: str, config: dict[str, Any], credential: Any = None) -> None:
    """A bucket location every user may import from (``shared``) must not overlap a location
    workspace files are stored in (the site's, workspaces' own, ``workspace_storage`` ones):
    else anyone could import other workspaces' objects. Refused with the field named."""
    if kind not in _SCHEMES:
        return
    raw = str(config.get("location") or "").strip()
    if not raw:
        return
    shared, storage = bool(config.get("shared")), bool(config.get("workspace_storage"))
    if shared and storage:
        raise field_error(
            "config.shared",
            "A location can't be both shared for imports and workspace storage; register two "
            "separate prefixes.",
        )
    pk = credential.pk if credential is not None else None
    if shared:
        _refuse_shared_over_storage(raw, pk)
    if storage:
        _refuse_storage_over_shared(raw, pk)


def credential_check(credential: Credential) -> Credential:
    """Try the credential for real and record the outcome (never raises for a bad secret)."""
    checker = CHECKERS.get(credential.kind)
    if checker is None:
        ok, message = None, f"Ferry can't check {credential.kind} credentials yet; saved unchecked."
    else:
        try:
            problems = checker(
                dict(credential.config), decrypt_secret(credential.secret_ciphertext)
            )
        except ApplicationError as exc:
            problems = [exc.message]
        except Exception as exc:  # a checker must never leak a secret through an exception text
            logger.warning("credential check of %s failed: %s", credential.name, type(exc).__name__)
            problems = [f"the check failed ({type(exc).__name__})"]
        ok = not problems
        message = "Ferry can use this location." if ok else "; ".join(problems)
    Credential.objects.filter(pk=credential.pk).update(
        checked_at=timezone.now(), check_ok=ok, check_message=message
    )
    credential.refresh_from_db()
    return credential


def credential_create(
    *, user: User, name: str, kind: str, config: dict[str, Any], secret: dict[str, Any]
) -> Credential:
    _validate(kind, config, secret)
    _check_location_roles(kind, config)
    if Credential.objects.filter(name=name).exists():
        raise ApplicationError(
            f"A credential named {name} exists already.",
            details={"name": ["Already used."]},
            code="duplicate",
            status_code=409,
        )
    credential = Credential.objects.create(
        name=name,
        kind=kind,
        config=config,
        secret_ciphertext=encrypt_secret(secret) if secret else "",
        created_by=user,
    )
    return credential_check(credential)


def credential_update(
    *,
    credential: Credential,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    secret: dict[str, Any] | None = None,
) -> Credential:
    new_config = credential.config if config is None else config
    _validate(credential.kind, new_config, secret)
    _check_location_roles(credential.kind, new_config, credential)
    with transaction.atomic():
        if name is not None:
            if Credential.objects.filter(name=name).exclude(pk=credential.pk).exists():
                raise ApplicationError(
                    f"A credential named {name} exists already.",
                    details={"name": ["Already used."]},
                    code="duplicate",
                    status_code=409,
                )
            credential.name = name
        credential.config = new_config
        if secret is not None:
            credential.secret_ciphertext = encrypt_secret(secret) if secret else ""
        credential.save()
    return credential_check(credential)


def credentials_rotate_key(progress: Callable[[int], None] | None = None) -> int:
    """Re-encrypt every stored secret with the newest key; returns how many were rotated."""
    count = 0
    for credential in Credential.objects.exclude(secret_ciphertext="").iterator():
        Credential.objects.filter(pk=credential.pk).update(
            secret_ciphertext=rotate(credential.secret_ciphertext)
        )
        count += 1
        if progress:
            progress(1)
    return count


def credential_delete(*, credential: Credential) -> None:
    """Delete a credential nothing depends on: refused (409) while a Cromwell server logs in
    with it, or while workspaces store files in, or files live in, its bucket location."""
    from .models import File, Workspace

    reasons = [reason for use in CREDENTIAL_USES if (reason := use(credential))]
    location = str(credential.config.get("location") or "")
    if credential.kind in _SCHEMES and location:
        prefix = location if location.endswith("/") else location + "/"
        workspaces = Workspace.objects.filter(storage_location__startswith=prefix).count()
        files = File.objects.filter(storage_uri__startswith=prefix).count()
        if workspaces:
            reasons.append(f"{workspaces} workspace(s) store their files in {prefix}")
        if files:
            reasons.append(f"{files} file(s) live in {prefix}")
    if reasons:
        raise Conflict(
            f"The credential is in use: {'; '.join(reasons)}. Move or delete those first.",
            code="credential_in_use",
        )
    credential.delete()
