"""Bytes that go straight between a client and a bucket: direct uploads (signed URLs, then a
checked completion), signed download URLs, imports of existing objects, and the clean-up of
uploads that never completed. Ferry signs and checks; it never carries these bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..exceptions import ApplicationError, Conflict, field_error
from ..file_states import file_created, file_transition
from ..filetypes import content_type_for, guess_file_type
from ..models import DiscardedUpload, File, FileStatus, FileType, User, Workspace
from ..selectors import object_of_unreadable_workspace, require_write
from ..services import clean_file_name
from . import buckets, locations

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
    crc32c: str | None = None,
    file_type: str | None = None,
    origin: str | None = None,
) -> tuple[File, dict[str, Any]]:
    """Create a PENDING File and sign the client's upload straight to the bucket.

    Small files get one signed PUT (S3 signs Content-Length, and the sha256 when declared);
    files above ``FERRY_MULTIPART_UPLOAD_ABOVE`` on S3 get presigned multipart parts. GCS gets a
    signed URL, or a resumable session when its credentials can't sign.
    """
    require_write(user, workspace)
    name = clean_file_name(name)
    if size <= 0:
        raise field_error("size", "A file needs at least one byte.")
    if size > settings.FERRY_MAX_UPLOAD_BYTES:
        raise field_error("size", f"Files are limited to {settings.FERRY_MAX_UPLOAD_BYTES} bytes.")
    sha256 = _checksum(sha256, 64, "sha256")
    md5 = _checksum(md5, 32, "md5")
    crc32c = _checksum(crc32c, 8, "crc32c")
    kind = FileType(file_type) if file_type else guess_file_type(name)
    content_type = content_type_for(name, kind)
    location = _direct_location(workspace)
    client = location.client()
    file_id = uuid.uuid4()
    # The client's URLs name a staging object; completion copies it to the file's key, which
    # no URL ever names, so nothing sent through them later changes the stored file.
    ref = location.ref().child(locations.upload_staging_key(workspace.pk, file_id, name))
    final = location.ref().child(locations.object_key(workspace.pk, file_id, name))
    expires_s = settings.FERRY_SIGNED_URL_EXPIRES_S
    pending: dict[str, Any] = {
        "declared_sha256": sha256,
        "declared_md5": md5,
        "declared_crc32c": crc32c,
        "staging_uri": ref.uri,
        "final_uri": final.uri,
    }
    if isinstance(client, buckets.S3Bucket) and size > settings.FERRY_MULTIPART_UPLOAD_ABOVE:
        signed = client.presign_multipart(
            ref, size, settings.FERRY_MULTIPART_PART_SIZE, expires_s, content_type
        )
        signed["kind"] = "presigned_multipart"
        pending["multipart_upload_id"] = signed["upload_id"]
        pending["part_size"] = signed["part_size"]
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


def file_upload_sign_parts(*, user: User, file: File, part_numbers: list[int]) -> dict[str, Any]:
    """Fresh signed URLs for parts of a pending multipart upload (signed URLs are short-lived;
    the upload itself may take until it expires)."""
    require_write(user, file.workspace)
    pending = file.pending_upload or {}
    upload_id = pending.get("multipart_upload_id")
    if file.status != FileStatus.PENDING or not upload_id:
        raise Conflict("This is not a pending multipart upload.", code="not_multipart")
    now = timezone.now()
    if file.pending_expires_at and file.pending_expires_at <= now:
        raise Conflict("This upload has expired; start a new one.", code="upload_expired")
    location, ref = locations.resolve(file.storage_uri)
    client = location.client()
    assert isinstance(client, buckets.S3Bucket)
    expires_s = settings.FERRY_SIGNED_URL_EXPIRES_S
    try:
        parts = client.presign_parts(
            ref, upload_id, file.size, int(pending["part_size"]), part_numbers, expires_s
        )
    except buckets.BucketError as exc:
        if exc.status_code == 400:
            raise field_error("part_numbers", exc.message) from None
        raise
    expires_at = (now + datetime.timedelta(seconds=expires_s)).isoformat()
    return {"parts": parts, "expires_at": expires_at}


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
    declared_crc = pending.get("declared_crc32c") or ""
    if declared_crc and info.crc32c and info.crc32c != declared_crc:
        return f"the object's crc32c is {info.crc32c}, not the declared {declared_crc}"
    return ""


def _sha256_by_reading(client: buckets.BucketClient, ref: buckets.ObjectRef) -> str:
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
    _retire_staging(client, ref, file)
    file.delete()


def _retire_staging(client: buckets.BucketClient, ref: buckets.ObjectRef, file: File) -> None:
    """Remove an upload's staging object. Its signed URLs still work for a while: the sweep
    removes anything PUT there later (every URL signed until now has expired by then)."""
    try:
        client.delete(ref)
    except buckets.BucketError as exc:
        logger.warning("could not remove the object of upload %s: %s", file.pk, exc.message)
    DiscardedUpload.objects.create(
        uri=ref.uri,
        until=timezone.now() + datetime.timedelta(seconds=settings.FERRY_SIGNED_URL_EXPIRES_S + 60),
    )


def file_upload_complete(
    *, user: User, file: File, parts: list[dict[str, Any]] | None = None
) -> File:
    """Check the uploaded object (exists, declared size and checksum) and make the File READY.

    The client uploaded to a staging object: it is copied (server-side) to the file's own key,
    which no signed URL names, and removed; the copy is what is checked and kept. Objects above
    ``FERRY_INLINE_VERIFY_MAX_BYTES`` are copied and checked by a worker (the file stays
    pending meanwhile; the staging object must not change before then). A missing object
    leaves the upload pending (the client may still PUT it until it expires). An object of
    another size or checksum is removed with its File, and the error says why.
    """
    require_write(user, file.workspace)
    if file.status != FileStatus.PENDING or file.pending_upload is None:
        raise Conflict("This upload is complete already.", code="not_pending")
    if file.pending_upload.get("verifying"):
        raise Conflict("This upload is being checked already.", code="not_pending")
    if file.pending_expires_at and file.pending_expires_at <= timezone.now():
        raise Conflict("This upload has expired; start a new one.", code="upload_expired")
    location, ref = locations.resolve(file.storage_uri)
    client = location.client()
    final_uri = file.pending_upload.get("final_uri")
    if not final_uri:  # signed by an older version straight to the file's key: not kept
        _discard(file, client, ref)
        raise Conflict(
            "This upload was started before an update and can't be completed; start a new one.",
            code="upload_expired",
        )
    if file.storage_uri != final_uri:
        staged = _assemble(file, client, ref, parts)
        if staged.size > settings.FERRY_INLINE_VERIFY_MAX_BYTES:
            File.objects.filter(pk=file.pk).update(
                pending_upload={**file.pending_upload, "verifying": True, "etag": staged.etag}
            )
            transaction.on_commit(lambda: _enqueue_verification(file.pk))
            file.refresh_from_db()
            return file
    problem = _keep_and_check(file, client)
    if problem:
        raise UploadCheckFailed(
            f"The upload failed its check: {problem}. The object and the pending file were "
            "removed; upload again.",
            details={"file": [problem]},
        )
    return file


def _assemble(
    file: File,
    client: buckets.BucketClient,
    staging: buckets.ObjectRef,
    parts: list[dict[str, Any]] | None,
) -> buckets.ObjectInfo:
    """The uploaded staging object (its parts assembled first for multipart uploads)."""
    assert file.pending_upload is not None
    upload_id = file.pending_upload.get("multipart_upload_id")
    if upload_id:
        if not parts:
            raise field_error(
                "parts", "List every uploaded part as {part_number, etag} to complete it."
            )
        if not isinstance(client, buckets.S3Bucket):
            raise ApplicationError("Multipart completion is only for S3 locations.")
        try:
            client.complete_multipart(staging, upload_id, parts)
        except buckets.BucketError as exc:
            raise UploadCheckFailed(
                f"The bucket refused to assemble the parts: {exc.message}",
                details={"parts": [exc.message]},
            ) from None
    staged = client.head_or_none(staging)
    if staged is None:
        raise UploadCheckFailed(
            "Nothing was uploaded yet: PUT the file to the signed URL first (the upload stays "
            "open until it expires).",
            code="upload_missing",
        )
    return staged


def _keep_and_check(file: File, client: buckets.BucketClient) -> str:
    """Copy the staging object to the file's key (unless a completion that stopped half-way
    did), remove the staging object, check the copy and mark the File READY; or remove it all
    and return why not. Safe to run again after a crash at any line."""
    pending = file.pending_upload or {}
    final_uri = pending.get("final_uri") or file.storage_uri
    final = buckets.parse_uri(final_uri)
    staging = buckets.parse_uri(pending.get("staging_uri") or file.storage_uri)
    if file.storage_uri != final_uri:
        staged = client.head_or_none(staging)
        expected = pending.get("etag")
        if staged is None or (expected and staged.etag != expected):
            _discard(file, client, staging)
            return "the uploaded object changed or disappeared after completion was asked for"
        info = client.copy(staging, final, overwrite=True)
        if buckets.same_content(staged, info) is True and not (info.server_sha256 or info.sha256):
            info = dataclasses.replace(info, server_sha256=staged.server_sha256)
        File.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(storage_uri=final_uri)
        file.storage_uri = final_uri
    else:
        info = client.head(final)
    if staging.uri != final_uri:
        _retire_staging(client, staging, file)
    problem = _verify(file, info)
    declared_sha = pending.get("declared_sha256") or ""
    if not problem and declared_sha and not (info.server_sha256 or info.sha256):
        # The server can't vouch for the sha256 (GCS, multipart, no checksum support): Ferry
        # reads the object once (in a worker when large).
        actual = _sha256_by_reading(client, final)
        if actual != declared_sha:
            problem = f"the object's sha256 is {actual}, not the declared {declared_sha}"
    if problem:
        logger.info("upload %s failed its check: %s; removed", file.pk, problem)
        _discard(file, client, final)
        return problem
    _mark_ready(file, info, declared_sha)
    return ""


def _mark_ready(file: File, info: buckets.ObjectInfo, sha256: str) -> File:
    updated = file_transition(
        file,
        FileStatus.READY,
        expected=FileStatus.PENDING,
        sha256=sha256 or info.server_sha256 or info.sha256 or "",
        md5=info.md5 or "",  # only what the bucket itself reported
        crc32c=info.crc32c or "",
        pending_upload=None,
        pending_expires_at=None,
    )
    if not updated:
        raise Conflict("This upload was completed or removed meanwhile.", code="not_pending")
    file.refresh_from_db()
    return file


def _enqueue_verification(file_id: Any) -> None:
    from django_q.tasks import async_task

    async_task("api.storage.transfers.verify_upload", str(file_id), task_name=f"verify-{file_id}")


def verify_upload(file_id: str) -> str:
    """Worker task: copy a large upload to the file's key and check it (reading it once when
    the bucket can't vouch for its declared sha256); the file becomes READY, or is removed with
    its objects when the bytes differ."""
    file = File.objects.filter(pk=file_id, status=FileStatus.PENDING).first()
    if file is None or not (file.pending_upload or {}).get("verifying"):
        return "nothing to verify"
    location, _ref = locations.resolve(file.storage_uri)
    problem = _keep_and_check(file, location.client())
    return f"{problem}: removed" if problem else "ready"


def upload_cancel(*, file: File) -> None:
    """Drop a pending direct upload: its multipart upload, any object already sent, the File."""
    try:
        location, ref = locations.resolve(file.storage_uri)
    except ApplicationError:
        file.delete()
        return
    _discard(file, location.client(), ref)


def pending_uploads_expire(*, now: datetime.datetime | None = None) -> int:
    """Remove uploads that were never completed in time (object, multipart upload, record),
    and whatever a client PUT through a removed upload's signed URL before it expired."""
    now = now or timezone.now()
    for late in DiscardedUpload.objects.filter(until__lte=now):
        if not File.objects.filter(storage_uri=late.uri).exists():
            try:
                location, ref = locations.resolve(late.uri)
                location.client().delete(ref)
            except ApplicationError as exc:
                logger.warning("late upload at %s: %s", late.uri, exc.message)
        late.delete()
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
    require_write(user, workspace)
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
    if not locations.may_import(user, location):
        raise field_error(
            "uri",
            f"You may not import from {location.uri} (ask an admin to share it).",
            code="forbidden",
        )
    if object_of_unreadable_workspace(user, ref.uri):  # removed members, strangers with a URI
        raise field_error(
            "uri",
            f"{ref.uri} belongs to a workspace you can't read; it can't be imported.",
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
            imported = File.objects.create(
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
            file_created(imported)
            return imported
    except IntegrityError:
        raise Conflict(
            f"{ref.uri} is registered as a file in this workspace already.",
            code="duplicate",
            details={"uri": ["Already registered."]},
        ) from None
