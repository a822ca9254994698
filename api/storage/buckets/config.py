"""How to reach a bucket: endpoint, region, credentials (:class:`BucketConfig`)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from django.conf import settings

from .errors import InvalidBucketConfig
from .limits import S3_MAX_COPY_OBJECT_SIZE, S3_MIN_PART_SIZE, KiB, MiB


@dataclass(frozen=True)
class BucketConfig:
    """How to reach a bucket provider. Secrets are never part of ``repr()`` or messages.

    S3: ``endpoint_url`` for S3-compatible servers (path-style addressing is then used),
    ``region``, and ``access_key_id``/``secret_access_key`` (``session_token``) — or none of them
    to use boto3's own chain (environment, config files, instance/task roles).

    GCS: ``project``, ``credentials_json`` (a service-account key, as JSON text) or the
    application-default credentials; ``api_endpoint`` for an emulator (default: the
    ``STORAGE_EMULATOR_HOST`` environment variable). ``anonymous=True`` makes API calls without
    credentials (emulators); a ``credentials_json`` given as well is then only used to sign URLs.
    When ``anonymous`` is None it is true exactly when the endpoint comes from
    ``STORAGE_EMULATOR_HOST`` and no key is given.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: str | None = None  # "path" | "virtual" | "auto"; default path with endpoint

    project: str | None = None
    credentials_json: str | None = field(default=None, repr=False)
    api_endpoint: str | None = None
    anonymous: bool | None = None

    chunk_size: int = 8 * MiB  # streamed reads and upload parts
    multipart_threshold: int = 8 * MiB  # uploads above this are multipart/resumable
    max_concurrency: int = 4
    copy_multipart_threshold: int = S3_MAX_COPY_OBJECT_SIZE
    copy_part_size: int = 512 * MiB
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int = 3  # S3 attempts per request; GCS retries within retry_deadline_s
    retry_deadline_s: float = 60.0

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "secret_access_key",
        "session_token",
        "credentials_json",
    )

    def __post_init__(self) -> None:
        try:
            if self.chunk_size < 256 * KiB or self.chunk_size % (256 * KiB):
                raise InvalidBucketConfig("chunk_size must be a multiple of 256 KiB")
            if self.copy_part_size < S3_MIN_PART_SIZE:
                raise InvalidBucketConfig("copy_part_size must be at least 5 MiB")
            if self.max_concurrency < 1 or self.max_attempts < 1:
                raise InvalidBucketConfig("max_concurrency and max_attempts must be at least 1")
        except TypeError:
            raise InvalidBucketConfig("bucket settings have values of the wrong type") from None
        if self.addressing_style not in (None, "path", "virtual", "auto"):
            raise InvalidBucketConfig("addressing_style must be path, virtual or auto")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BucketConfig:
        """Build from a plain dict (settings or a decrypted credential); unknown keys are errors."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidBucketConfig(f"unknown bucket settings: {', '.join(unknown)}")
        return cls(**data)

    def secrets(self) -> list[str]:
        values = [getattr(self, name) for name in self.SECRET_FIELDS]
        found = [v for v in values if v]
        if self.credentials_json:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                key = json.loads(self.credentials_json).get("private_key")
                if key:
                    found.append(key)
        return found

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "[secret]")
        return text


def default_config(scheme: str) -> BucketConfig:
    """The site's settings for a provider: ``settings.FERRY_BUCKETS[scheme]`` (a dict of
    :class:`BucketConfig` fields), else defaults (environment credentials)."""
    configured = getattr(settings, "FERRY_BUCKETS", {}) or {}
    return BucketConfig.from_dict(dict(configured.get(scheme, {})))
