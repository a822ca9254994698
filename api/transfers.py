"""Bytes that go straight between a client and a bucket: direct uploads (signed URLs, then a
checked completion), signed download URLs, imports of existing objects, and the clean-up of
uploads that never completed. Ferry signs and checks; it never carries these bytes.
"""

from __future__ import annotations

import datetime
import logging
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import buckets, locations
from .errors import ApplicationError, Conflict, field_error
from .filetypes import content_type_for, guess_file_type
from .models import File, FileStatus, FileType, User, Workspace
from .services import _require_write, clean_file_name

logger = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9a-f]+$")


class UploadCheckFailed(ApplicationError):
    code = "upload_check_failed"


def _checksum(value: str | None, length: int, field: str) -> str:
    text = (value or "").strip().lower()
    if text and (len(text) != length or not _HEX.match(text)):
        raise field_error(field, f"Must be {length} hexadecimal characters.")
    return text


def _direct_location(workspace: Workspace) -> locations.Location:
    location = locations.workspace_location(workspace)
    if location.is_local:
        raise Conflict(
            "This workspace keeps its files in Ferry's local storage, which has no signed URLs; "
            "upload through PUT /api/files/upload/ (or POST /api/files/) instead.",
            code="direct_upload_unavailable",
        )
    return location


# ------------------------------------------------------------------------------ direct uploads


def file_upload_start(
    *,
    user: User,
    workspace: Workspace,
    name: str,
    size: int,
    sha256: str | None = None,
    md5: str | None = None,
    file_type: str | None = None,
    origin: str | None = None,
) -> tuple[File, dict[str, Any]]:
    """Create a PENDING File and sign the client's upload straight to the bucket.

    Small files get one signed PUT (S3 signs Content-Length, and the sha256 when declared);
    files above ``FERRY_MULTIPART_UPLOAD_ABOVE`` on S3 get presigned multipart parts. GCS gets a
    signed URL, or a resumable session when its credentials can't sign.
    """
    _require_write(user, workspace)
    name = clean_file_name(name)
    if size <= 0:
        raise field_error("size", "A file needs at least one byte.")
    if size > settings.FERRY_MAX_UPLOAD_BYTES:
        raise field_error("size", f"Files are limited to {settings.FERRY_MAX_UPLOAD_BYTES} bytes.")
    sha256 = _checksum(sha256, 64, "sha256")
    md5 = _checksum(md5, 32, "md5")
    kind = FileType(file_type) if file_type else guess_file_type(name)
    content_type = content_type_for(name, kind)
    location = _direct_location(workspace)
    client = location.client()
    file_id = uuid.uuid4()
    ref = location.ref().child(locations.object_key(workspace.pk, file_id, name))
    expires_s = settings.FERRY_SIGNED_URL_EXPIRES_S
    pending: dict[str, Any] = {"declared_sha256": sha256, "declared_md5": md5}
    if isinstance(client, buckets.S3Bucket) and size > settings.FERRY_MULTIPART_UPLOAD_ABOVE:
        signed = client.presign_multipart(
            ref, size, settings.FERRY_MULTIPART_PART_SIZE, expires_s, content_type
        )
        signed["kind"] = "presigned_multipart"
        pending["multipart_upload_id"] = signed["upload_id"]
    elif isinstance(client, buckets.GCSBucket):
        signed = client.presign_put(ref, expires_s, content_type, size, origin=origin)
    else:
        signed = client.presign_put(ref, expires_s, content_type, size, sha256=sha256 or None)
    now = timezone.now()
    signed["expires_at"] = (now + datetime.timedelta(seconds=expires_s)).isoformat()
    file = File.objects.create(
        id=file_id,
        workspace=workspace,
        owner=user,
        name=name,
        size=size,
        sha256=sha256,
        md5=md5,
        content_type=content_type,
        file_type=kind,
        status=FileStatus.PENDING,
        storage_uri=ref.uri,
        pending_upload=pending,
        pending_expires_at=now
        + datetime.timedelta(seconds=settings.FERRY_PENDING_UPLOAD_EXPIRES_S),
    )
    return file, signed


def _verify(file: File, info: buckets.ObjectInfo) -> str:
    """Why the uploaded object is not what was declared ("" when it is)."""
    if info.size != file.size:
        word = "smaller" if info.size < file.size else "larger"
        return f"the object has {info.size} bytes, {word} than the declared {file.size}"
    pending = file.pending_upload or {}
    declared_sha = pending.get("declared_sha256") or ""
    declared_md5 = pending.get("declared_md5") or ""
    if declared_sha:
        known = info.server_sha256 or info.sha256
        if known and known != declared_sha:
            return f"the object's sha256 is {known}, not the declared {declared_sha}"
        if not known:
            return ""  # checked below by reading the object
    if declared_md5 and info.md5 and info.md5 != declared_md5:
        return f"the object's md5 is {info.md5}, not the declared {declared_md5}"
    return ""


def _sha256_by_reading(client: buckets.BucketClient, ref: buckets.ObjectRef) -> str:
    import hashlib

    digest = hashlib.sha256()
    for chunk in client.open_read(ref):
        digest.update(chunk)
    return digest.hexdigest()


def _discard(file: File, client: buckets.BucketClient, ref: buckets.ObjectRef) -> None:
    upload_id = (file.pending_upload or {}).get("multipart_upload_id")
    if upload_id and isinstance(client, buckets.S3Bucket):
        try:
            client.abort_multipart(ref, upload_id)
        except buckets.BucketError as exc:
            logger.info("abort of multipart upload for %s: %s", file.pk, exc.message)
    try:
        client.delete(ref)
    except buckets.BucketError as exc:
        logger.warning("could not remove the object of upload %s: %s", file.pk, exc.message)
    file.delete()


def file_upload_complete(
    *, user: User, file: File, parts: list[dict[str, Any]] | None = None
) -> File:
    """Check the uploaded object (exists, declared size and checksum) and make the File READY.

    A missing object leaves the upload pending (the client may still PUT it until it expires).
    An object of another size or checksum is removed with its File, and the error says why.
    """
    _require_write(user, file.workspace)
    if file.status != FileStatus.PENDING or file.pending_upload is None:
        raise Conflict("This upload is complete already.", code="not_pending")
    if file.pending_expires_at and file.pending_expires_at <= timezone.now():
        raise Conflict("This upload has expired; start a new one.", code="upload_expired")
    location, ref = locations.resolve(file.storage_uri)
    client = location.client()
    upload_id = file.pending_upload.get("multipart_upload_id")
    if upload_id:
        if not parts:
            raise field_error(
                "parts", "List every uploaded part as {part_number, etag} to complete it."
            )
        if not isinstance(client, buckets.S3Bucket):
            raise ApplicationError("Multipart completion is only for S3 locations.")
        try:
            client.complete_multipart(ref, upload_id, parts)
        except buckets.BucketError as exc:
            raise UploadCheckFailed(
                f"The bucket refused to assemble the parts: {exc.message}",
                details={"parts": [exc.message]},
            ) from None
    info = client.head_or_none(ref)
    if info is None:
        raise UploadCheckFailed(
            "Nothing was uploaded yet: PUT the file to the signed URL first (the upload stays "
            "open until it expires).",
            code="upload_missing",
        )
    problem = _verify(file, info)
    declared_sha = file.pending_upload.get("declared_sha256") or ""
    if not problem and declared_sha and not (info.server_sha256 or info.sha256):
        # The server could not vouch for the sha256 (e.g. no checksum support): read it once.
        actual = _sha256_by_reading(client, ref)
        if actual != declared_sha:
            problem = f"the object's sha256 is {actual}, not the declared {declared_sha}"
    if problem:
        _discard(file, client, ref)
        raise UploadCheckFailed(
            f"The upload failed its check: {problem}. The object and the pending file were "
            "removed; upload again.",
            details={"file": [problem]},
        )
    updated = File.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
        status=FileStatus.READY,
        sha256=declared_sha or info.server_sha256 or info.sha256 or "",
        md5=info.md5 or file.md5,
        crc32c=info.crc32c or "",
        pending_upload=None,
        pending_expires_at=None,
        updated_at=timezone.now(),
    )
    if not updated:
        raise Conflict("This upload was completed or removed meanwhile.", code="not_pending")
    file.refresh_from_db()
    return file


def pending_uploads_expire(*, now: datetime.datetime | None = None) -> int:
    """Remove uploads that were never completed in time (object, multipart upload, record)."""
    now = now or timezone.now()
    count = 0
    for file in File.objects.filter(status=FileStatus.PENDING, pending_expires_at__lte=now):
        try:
            location, ref = locations.resolve(file.storage_uri)
            _discard(file, location.client(), ref)
        except ApplicationError as exc:
            logger.warning("expired upload %s: %s; removing its record", file.pk, exc.message)
            file.delete()
        count += 1
    return count


# ------------------------------------------------------------------------------ downloads


def signed_download_url(file: File) -> str | None:
    """A short-lived signed URL for a READY file in a bucket; None for local files."""
    if file.storage_uri.startswith("file://"):
        return None
    if file.status != FileStatus.READY:
        raise Conflict("The file is not ready to download.", code="not_ready")
    location, ref = locations.resolve(file.storage_uri)
    return location.client().presign_get(
        ref,
        settings.FERRY_SIGNED_URL_EXPIRES_S,
        filename=file.name,
        content_type=file.content_type,
    )


# ------------------------------------------------------------------------------ imports


def file_import(
    *,
    user: User,
    workspace: Workspace,
    uri: str,
    name: str | None = None,
    file_type: str | None = None,
) -> File:
    """Register an object already in a bucket as a File, where it is (Ferry won't delete it)."""
    _require_write(user, workspace)
    try:
        ref = buckets.parse_uri(uri.strip()).require_key()
    except buckets.InvalidObjectURI as exc:
        raise field_error("uri", exc.message) from None
    location = locations.location_of(ref.uri)
    if location is None or location.is_local:
        raise field_error(
            "uri",
            f"{ref.uri} is not inside a registered storage location; an admin registers "
            "bucket locations as credentials (or in FERRY_IMPORT_LOCATIONS).",
            code="location_refused",
        )
    if not locations.may_use(user, location, workspace):
        raise field_error(
            "uri",
            f"You may not import from {location.uri} (ask an admin to share it).",
            code="forbidden",
        )
    try:
        info = location.client().head(ref)
    except buckets.BucketError as exc:
        raise ApplicationError(
            f"Ferry can't read {ref.uri}: {exc.message}",
            details={"uri": [exc.message]},
            code=exc.code,
            status_code=400 if exc.status_code < 500 else exc.status_code,
        ) from None
    display = clean_file_name(name or ref.key.rsplit("/", 1)[-1], field="name")
    kind = FileType(file_type) if file_type else guess_file_type(display)
    try:
        with transaction.atomic():
            return File.objects.create(
                workspace=workspace,
                owner=user,
                name=display,
                size=info.size,
                sha256=info.sha256 or info.server_sha256 or "",
                md5=info.md5 or "",
                crc32c=info.crc32c or "",
                content_type=info.content_type or content_type_for(display, kind),
                file_type=kind,
                status=FileStatus.READY,
                storage_uri=ref.uri,
                managed=False,
            )
    except IntegrityError:
        raise Conflict(
            f"{ref.uri} is registered as a file already.",
            code="duplicate",
            details={"uri": ["Already registered."]},
        ) from None
