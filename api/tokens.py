"""Personal API token format: ``fry_`` + 43 URL-safe characters; only the sha256 is stored."""

import hashlib
import secrets

TOKEN_PREFIX = "fry_"  # noqa: S105 - a marker, not a secret


def new_token_key() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
