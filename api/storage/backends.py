"""Django ``Storage`` objects for bucket locations, from django-storages.

A bucket location (``s3://bucket/prefix/``, ``gs://bucket/prefix/``) gets a django-storages
backend configured from its :class:`~api.storage.buckets.BucketConfig`; the site's default location is
also what ``STORAGES["files"]`` names when ``FERRY_STORAGE_LOCATION`` is a bucket. Ferry writes
files through these (``storage.save`` streams from the spooled upload, multipart above the
configured threshold). Objects written this way carry their sha256 as metadata, the same key
:mod:`api.storage.buckets` records and compares when it copies objects.

What django-storages doesn't do lives in :mod:`api.storage.buckets`: verified server-side copies,
presigned uploads and multipart parts, checksum checks, streamed ranged reads (django-storages'
S3 file object downloads a whole object before the first byte is served).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import Storage
from storages.backends.gcloud import GoogleCloudStorage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from . import buckets

_write: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "ferry_write", default=None
)


@contextlib.contextmanager
def writing(*, sha256: str, content_type: str) -> Iterator[None]:
    """Objects saved inside this block get ``sha256`` as metadata and this content type."""
    token = _write.set({"sha256": sha256, "content_type": content_type})
    try:
        yield
    finally:
        _write.reset(token)


class FerryS3Storage(S3Storage):
    """django-storages' S3 backend; saved objects record their sha256 as metadata. Without a
    ``transfer_config`` it uses Ferry's bounded one (4 parts of 8 MiB in flight, not boto3's 10)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if getattr(self, "transfer_config", None) is None:
            self.transfer_config = bounded_transfer(buckets.BucketConfig())

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params: dict[str, Any] = super().get_object_parameters(name)
        write = _write.get()
        if write:
            meta = {**params.get("Metadata", {}), buckets.SHA256_METADATA_KEY: write["sha256"]}
            params["Metadata"] = meta
            params["ContentType"] = write["content_type"]
        return params

    def _save(self, name: str, content: Any) -> str:
        """A file that is on disk already (a spooled upload) is sent from its path: each part
        is read from the file as it goes out, so memory stays at a few socket buffers whatever
        the size. ``upload_fileobj`` (django-storages' way) reads every part into an 8 MiB
        bytes object per thread, which glibc keeps in per-thread arenas after the upload."""
        path = getattr(content, "temporary_file_path", None)
        if path is None or self.gzip:
            saved: str = super()._save(name, content)
            return saved
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        params = self._get_write_parameters(key, content)
        self.bucket.Object(key).upload_file(path(), ExtraArgs=params, Config=self.transfer_config)
        return str(cleaned)


class FerryGCSStorage(GoogleCloudStorage):
    """django-storages' GCS backend on Ferry's client (emulator endpoints and anonymous access
    included); saved objects record their sha256 as metadata."""

    def __init__(self, *, ferry_client: Any = None, **settings: Any) -> None:
        super().__init__(**settings)
        if ferry_client is not None:
            self._client = ferry_client

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params: dict[str, Any] = super().get_object_parameters(name)
        write = _write.get()
        if write:
            meta = {**params.get("metadata", {}), buckets.SHA256_METADATA_KEY: write["sha256"]}
            params["metadata"] = meta
            params["content_type"] = write["content_type"]
        return params


def bounded_transfer(config: buckets.BucketConfig) -> Any:
    """boto3 transfer settings that keep an upload's memory to a few parts."""
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(
        multipart_threshold=config.multipart_threshold,
        multipart_chunksize=config.chunk_size,
        max_concurrency=config.max_concurrency,
        use_threads=config.max_concurrency > 1,
    )
    transfer.max_in_memory_upload_chunks = config.max_concurrency
    return transfer


def s3_storage_options(ref: buckets.ObjectRef, config: buckets.BucketConfig) -> dict[str, Any]:
    """``STORAGES`` OPTIONS for :class:`FerryS3Storage` at ``ref`` (bucket + prefix)."""
    from botocore.config import Config

    return {
        "bucket_name": ref.bucket,
        "location": ref.key.strip("/"),
        "endpoint_url": config.endpoint_url,
        "region_name": config.region or ("us-east-1" if config.endpoint_url else None),
        "access_key": config.access_key_id,
        "secret_key": config.secret_access_key,
        "security_token": config.session_token,
        "addressing_style": config.addressing_style or ("path" if config.endpoint_url else None),
        "signature_version": "s3v4",
        "file_overwrite": True,  # keys are unique per file id: no existence probe per save
        "default_acl": None,
        "transfer_config": bounded_transfer(config),
        "client_config": Config(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
        ),
    }


_cache: dict[tuple[str, buckets.BucketConfig], Storage] = {}
_lock = threading.Lock()


def storage_for(uri: str, config: buckets.BucketConfig) -> Storage:
    """The django-storages backend for the bucket prefix ``uri`` (cached per settings)."""
    key = (uri, config)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            return found
        ref = buckets.parse_uri(uri)
        made: Storage
        if ref.scheme == "s3":
            made = FerryS3Storage(**s3_storage_options(ref, config))
        else:
            client = buckets.client_for("gs", config)
            assert isinstance(client, buckets.GCSBucket)
            made = FerryGCSStorage(
                ferry_client=client.gcs_client,
                bucket_name=ref.bucket,
                location=ref.key.strip("/"),
                project_id=config.project,
                file_overwrite=True,
                default_acl=None,
                blob_chunk_size=config.chunk_size,
            )
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = made
        return made
