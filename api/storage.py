"""Where file bytes live. A File records a storage URI; this module turns URIs into objects.

Only local storage (``file://``) exists so far; bucket backends plug in here later.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote, urlparse

from django.core.files import File as DjangoFile
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from .errors import ApplicationError

FILES_STORAGE_ALIAS = "files"


class StorageUnavailable(ApplicationError):
    status_code: int = 503
    code = "storage_unavailable"


def files_storage() -> Storage:
    return storages[FILES_STORAGE_ALIAS]


def object_key(file_id: uuid.UUID) -> str:
    text = str(file_id)
    return f"{text[:2]}/{text}"


def _uri_for(storage: Storage, name: str) -> str:
    if isinstance(storage, FileSystemStorage):
        return "file://" + quote(str(Path(storage.path(name)).resolve()))
    raise StorageUnavailable(f"storage backend {type(storage).__name__} is not supported yet")


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise StorageUnavailable(f"no storage backend is configured for {parsed.scheme}:// URIs")
    path = Path(unquote(parsed.path)).resolve()
    storage = files_storage()
    if isinstance(storage, FileSystemStorage):
        root = Path(storage.location).resolve()
        if root not in path.parents:
            raise StorageUnavailable("the file's location is outside Ferry's storage root")
    return path


def save_object(key: str, content: DjangoFile) -> str:
    """Store ``content`` (a spooled upload is moved, not copied) and return its URI."""
    storage = files_storage()
    try:
        name = storage.save(key, content)
    except OSError as exc:
        raise StorageUnavailable(f"could not write to storage: {exc.strerror}") from exc
    return _uri_for(storage, name)


def open_object(uri: str) -> IO[bytes]:
    try:
        return open(_local_path(uri), "rb")
    except FileNotFoundError as exc:
        raise StorageUnavailable(
            "the file's content is missing from storage", code="content_missing"
        ) from exc


def local_path(uri: str) -> str:
    return str(_local_path(uri))


def delete_object(uri: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_local_path(uri))


def check_writable() -> None:
    """Used by /readyz: write, read back and delete a small object."""
    storage = files_storage()
    probe = f".readyz/{uuid.uuid4()}"
    name = storage.save(probe, ContentFile(b"ok"))
    try:
        with storage.open(name, "rb") as fh:
            if fh.read() != b"ok":
                raise OSError("read back different bytes")
    finally:
        storage.delete(name)
