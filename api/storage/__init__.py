"""Where file bytes live. A File records a storage URI; this module turns URIs into bytes.

``file://`` URIs live in the local "files" storage (Django's ``STORAGES``); ``s3://`` and
``gs://`` URIs live in buckets reached through :mod:`api.storage.buckets` with the connection settings of
the registered location they belong to (:mod:`api.storage.locations`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File as DjangoFile
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from ..exceptions import ApplicationError
from ..private_paths import make_private_dirs
from . import backends, buckets, locations
from .uploads import SpooledUpload

FILES_STORAGE_ALIAS = locations.FILES_STORAGE_ALIAS
SITE_BUCKET_ALIAS = "site-bucket"
_CHUNK = 1024 * 1024


class StorageUnavailable(ApplicationError):
    status_code: int = 503
    code = "storage_unavailable"


def files_storage() -> Storage:
    return storages[FILES_STORAGE_ALIAS]


def is_local(uri: str) -> bool:
    return uri.startswith("file://")


def object_key(file_id: uuid.UUID) -> str:
    """The key of a file in local storage."""
    text = str(file_id)
    return f"{text[:2]}/{text}"


def _local_path(uri: str) -> Path:
    try:
        return locations.local_path_of(uri)
    except locations.LocationRefused as exc:
        raise StorageUnavailable(exc.message) from None


def save_object(key: str, content: DjangoFile) -> str:
    """Store ``content`` in local storage (a spooled upload is moved, not copied); its URI."""
    storage = files_storage()
    if not isinstance(storage, FileSystemStorage):
        raise StorageUnavailable(f"storage backend {type(storage).__name__} is not supported")
    try:
        name = storage.save(key, content)
    except OSError as exc:
        raise StorageUnavailable(f"could not write to storage: {exc.strerror}") from exc
    return locations.local_location().object_uri(name)


def location_storage(location: locations.Location) -> Storage:
    """The Django storage holding a location's files: the local "files" storage, the site
    bucket configured in ``STORAGES["site-bucket"]``, or a django-storages backend built for a
    registered bucket location."""
    if location.is_local:
        return files_storage()
    if location.source == "site" and SITE_BUCKET_ALIAS in storages.backends:
        site = storages[SITE_BUCKET_ALIAS]
        prefix = getattr(site, "location", "")
        bucket = getattr(site, "bucket_name", "")
        if location.uri.rstrip("/") == f"{location.scheme}://{bucket}/{prefix}".rstrip("/"):
            return site
    assert location.config is not None
    return backends.storage_for(location.uri, location.config)


def save_to_location(
    location: locations.Location, key: str, upload: SpooledUpload, content_type: str
) -> tuple[str, buckets.ObjectInfo]:
    """Store a spooled (hashed) upload under ``key`` in a bucket location through its Django
    storage (streamed, multipart when large); check the stored object; return its URI."""
    target = location_storage(location)
    try:
        with backends.writing(sha256=upload.sha256, content_type=content_type):
            name = target.save(key, upload)
    except buckets.BucketError:
        raise
    except Exception as exc:  # boto3/google errors: say what failed without secrets
        raise StorageUnavailable(
            f"could not write to {location.uri} ({type(exc).__name__}); check the location's "
            "credentials and that the bucket exists"
        ) from exc
    uri = location.object_uri(name)
    info = head(uri)
    recorded = info.server_sha256 or info.sha256
    if info.size != upload.received or (recorded and recorded != upload.sha256):
        delete_object(uri)
        raise buckets.ChecksumMismatch(
            f"{uri} does not hold the {upload.received} bytes sent (size {info.size}); removed"
        )
    return uri, info


def head(uri: str) -> buckets.ObjectInfo:
    """Size and checksums of a stored object (local objects: size only)."""
    if is_local(uri):
        try:
            return buckets.ObjectInfo(size=_local_path(uri).stat().st_size)
        except FileNotFoundError as exc:
            raise StorageUnavailable(
                "the file's content is missing from storage", code="content_missing"
            ) from exc
    location, ref = locations.resolve(uri)
    return location.client().head(ref)


def open_object(uri: str) -> IO[bytes]:
    """A local object, opened for reading."""
    try:
        return open(_local_path(uri), "rb")
    except FileNotFoundError as exc:
        raise StorageUnavailable(
            "the file's content is missing from storage", code="content_missing"
        ) from exc


def iter_object(uri: str, start: int | None = None, end: int | None = None) -> Iterator[bytes]:
    """The bytes of any stored object (or the inclusive range ``start``-``end``), in chunks."""
    if is_local(uri):
        fh = open_object(uri)

        def local_chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(start or 0)
                remaining = None if end is None else end - (start or 0) + 1
                while remaining is None or remaining > 0:
                    chunk = fh.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                    if not chunk:
                        return
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk

        return local_chunks()
    location, ref = locations.resolve(uri)
    return location.client().open_read(ref, start, end)


def local_path(uri: str) -> str:
    return str(_local_path(uri))


def localize(uri: str, destination: Path) -> Path:
    """A local path holding the object's bytes: the stored file itself for local storage, else
    a streamed download to ``destination`` (kept if it is there already with the right size)."""
    if is_local(uri):
        return _local_path(uri)
    location, ref = locations.resolve(uri)
    client = location.client()
    info = client.head(ref)
    if destination.exists() and destination.stat().st_size == info.size:
        return destination
    make_private_dirs(destination.parent, tighten=False)
    fd, partial = tempfile.mkstemp(dir=destination.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in client.open_read(ref):
                out.write(chunk)
        os.chmod(partial, settings.FILE_UPLOAD_PERMISSIONS or 0o640)
        os.replace(partial, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    return destination


def delete_object(uri: str) -> None:
    if is_local(uri):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_local_path(uri))
        return
    try:
        location, ref = locations.resolve(uri)
        location.client().delete(ref)
    except buckets.ObjectNotFound:
        pass


def check_writable() -> None:
    """Used by /readyz: write, read back and delete a small object in the site location."""
    location = locations.site_location()
    if not location.is_local:
        problems = location.client().check_access(location.ref())
        if problems:
            raise StorageUnavailable("; ".join(problems))
        return
    storage = files_storage()
    probe = f".readyz/{uuid.uuid4()}"
    name = storage.save(probe, ContentFile(b"ok"))
    try:
        with storage.open(name, "rb") as fh:
            if fh.read() != b"ok":
                raise OSError("read back different bytes")
    finally:
        storage.delete(name)
