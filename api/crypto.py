"""Encrypting stored secrets with Fernet; several keys for rotation (the first one encrypts).

Keys come from ``FERRY_CREDENTIAL_KEYS`` (comma-separated Fernet keys, newest first). The
embedded default derives one from ``SECRET_KEY`` so ``make run`` works; production requires
real keys. Rotation: put the new key first, run ``manage.py ferry_rotate_credential_keys``,
then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from .exceptions import ApplicationError


class SecretUnreadable(ApplicationError):
    status_code = 500
    code = "secret_unreadable"


def derived_key(secret_key: str) -> str:
    digest = hashlib.sha256(b"ferry-credentials:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    keys = tuple(settings.FERRY_CREDENTIAL_KEYS) or (derived_key(settings.SECRET_KEY),)
    return _fernet(keys)


def encrypt_secret(secret: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(secret, sort_keys=True).encode()).decode()


def decrypt_secret(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        data = json.loads(fernet().decrypt(token.encode()))
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret can't be decrypted with the configured FERRY_CREDENTIAL_KEYS; "
            "restore the key it was encrypted with, or save the credential's secret again."
        ) from None
    return dict(data)


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first (newest) key."""
    return fernet().rotate(token.encode()).decode()
