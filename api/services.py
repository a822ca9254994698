"""Writes: every change to users, tokens, workspaces, members and files goes through here.

Functions are keyword-only and raise :class:`~api.exceptions.ApplicationError` for rule violations.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import storage
from .events import record_membership
from .exceptions import ApplicationError, Conflict, Forbidden, field_error
from .file_states import file_created, file_transition
from .filetypes import check_content, content_type_for, guess_file_type
from .models import (
    ApiToken,
    File,
    FileStatus,
    FileType,
    Membership,
    Role,
    User,
    Workspace,
)
from .selectors import require_write, role_in
from .storage import locations
from .storage.uploads import SpooledUpload
from .tokens import TOKEN_PREFIX, hash_token, new_token_key

# ---------------------------------------------------------------------------------------- users


def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(
            f"A user with the email {email} already exists.",
            details={"email": ["A user with this email already exists."]},
        )
    candidate = User(email=email, full_name=full_name)
    if password is not None:
        _validate_password(password, candidate, field="password")
    return User.objects.create_user(
        email=email,
        password=password,
        full_name=full_name,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )


def user_register(*, email: str, password: str, full_name: str = "") -> User:
    if not settings.FERRY_REGISTRATION_OPEN:
        raise Forbidden(
            "Registration is closed on this server; ask an administrator for an account.",
            code="registration_closed",
        )
    return user_create(email=email, password=password, full_name=full_name)


def user_change_password(*, user: User, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise field_error("old_password", "The current password is wrong.")
    _validate_password(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])


def _validate_password(password: str, user: User, *, field: str) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ApplicationError(exc.messages[0], details={field: list(exc.messages)}) from exc


# ----------------------------------------------------------------------------------- API tokens


def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the returned key is shown once and never stored."""
    if expires_at is not None and expires_at <= timezone.now():
        raise field_error("expires_at", "Must be in the future (or left out: no expiry).")
    key = new_token_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[: len(TOKEN_PREFIX) + 6],
        key_hash=hash_token(key),
        expires_at=expires_at,
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


# ----------------------------------------------------------------------------------- workspaces


def workspace_create(
    *, user: User, name: str, description: str = "", storage_location: str = ""
) -> Workspace:
    location = locations.check_storage_location(user, storage_location)
    with transaction.atomic():
        workspace = Workspace.objects.create(
            name=name, description=description, created_by=user, storage_location=location
        )
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        record_membership(workspace_id=workspace.pk, user_id=user.pk, role=Role.OWNER)
    return workspace


def workspace_update(*, workspace: Workspace, user: User | None = None, **fields: Any) -> Workspace:
    """Change a workspace's fields; where its files are stored only by its owners (or staff),
    and only to a registered location they may use."""
    if "storage_location" in fields:
        if user is None or (not user.is_staff and role_in(user, workspace) != Role.OWNER):
            raise field_error(
                "storage_location",
                "Only the workspace's owners may change where its files are stored.",
                code="forbidden",
            )
        fields["storage_location"] = locations.check_storage_location(
            user, fields["storage_location"]
        )
    for key, value in fields.items():
        setattr(workspace, key, value)
    workspace.save()
    return workspace


def workspace_delete(*, workspace: Workspace, delete_files: bool = False) -> None:
    """Delete a workspace. Refused while jobs are active, and while it holds files unless
    ``delete_files`` is given (then its files are deleted too)."""
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        # ``jobs``: the reverse of Job.workspace (operations' model; not imported here).
        active = locked.jobs.active().count()
        if active:
            raise Conflict(
                f"The workspace has {active} active job(s); cancel them or wait until they finish.",
                code="workspace_has_active_jobs",
            )
        files = list(File.objects.filter(workspace=locked))
        if files and not delete_files:
            raise Conflict(
                f"The workspace holds {len(files)} file(s); delete or move them first, "
                "or repeat the request with ?delete_files=true.",
                code="workspace_not_empty",
                details={"delete_files": ["Required to delete a workspace that holds files."]},
            )
        uris = [f.storage_uri for f in files if f.managed]
        File.objects.filter(workspace=locked).delete()
        locked.jobs.all().delete()
        locked.delete()

        def remove_objects() -> None:
            for uri in uris:
                storage.delete_object(uri)

        transaction.on_commit(remove_objects)


# -------------------------------------------------------------------------------------- members


def member_add(*, workspace: Workspace, email: str, role: str) -> Membership:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise field_error("email", f"No user has the email {email}.", code="unknown_user")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(workspace=workspace, user=user, role=role)
            record_membership(workspace_id=workspace.pk, user_id=user.pk, role=role)
            return membership
    except IntegrityError:
        raise Conflict(
            f"{user.email} is already a member of this workspace; change their role instead.",
            code="duplicate_member",
            details={"email": ["Already a member of this workspace."]},
        ) from None


def _ensure_other_owner(workspace: Workspace, membership: Membership) -> None:
    others = (
        Membership.objects.select_for_update()
        .filter(workspace=workspace, role=Role.OWNER)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise Conflict(
            "A workspace must keep at least one owner; make someone else an owner first.",
            code="last_owner",
            details={"role": ["This is the workspace's last owner."]},
        )


def member_update(*, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if locked.role == Role.OWNER and role != Role.OWNER:
            _ensure_other_owner(locked.workspace, locked)
        if locked.role != role:  # an event only when something changed
            locked.role = role
            locked.save(update_fields=["role"])
            record_membership(workspace_id=locked.workspace_id, user_id=locked.user_id, role=role)
    return locked


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if locked.role == Role.OWNER:
            _ensure_other_owner(locked.workspace, locked)
        locked.delete()
        record_membership(workspace_id=locked.workspace_id, user_id=locked.user_id, role=None)


# ---------------------------------------------------------------------------------------- files

MAX_NAME_LENGTH = 255


def clean_file_name(raw: str, *, field: str = "name") -> str:
    """A file name is one path segment of printable characters, at most 255 bytes of UTF-8."""
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        raise field_error(field, "A file name is required.", code="blank")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in name):
        raise field_error(field, "The file name contains control or invisible characters.")
    if "/" in name or "\\" in name:
        raise field_error(
            field, "The file name must not contain / or \\ (folders are not supported)."
        )
    if name in (".", "..") or name.startswith(".."):
        raise field_error(field, "The file name must not be . or .. or start with ..")
    if len(name.encode()) > MAX_NAME_LENGTH:
        raise field_error(field, f"The file name is longer than {MAX_NAME_LENGTH} bytes.")
    return name


def refuse_oversized_upload(announced: int, *, field: str = "Content-Length") -> None:
    """413 for a body announced larger than FERRY_MAX_UPLOAD_BYTES, before a byte of it is read."""
    limit = settings.FERRY_MAX_UPLOAD_BYTES
    if announced > limit:
        message = f"The body announces {announced} bytes; uploads are limited to {limit} bytes."
        raise ApplicationError(
            message, code="too_large", status_code=413, details={field: [message]}
        )


def file_create_from_upload(
    *,
    user: User,
    workspace: Workspace,
    upload: SpooledUpload,
    name: str,
    file_type: str | None = None,
    expected_sha256: str | None = None,
    checksum_field: str = "sha256",
) -> File:
    """Register a spooled upload as a File: verify, type-check, move into storage, record."""
    try:
        require_write(user, workspace)
        name = clean_file_name(name)
        if upload.received == 0:
            raise field_error(
                "file", "The upload is empty; a file needs at least one byte.", code="empty"
            )
        if upload.received > settings.FERRY_MAX_UPLOAD_BYTES:
            raise field_error(
                "file", f"The upload exceeds {settings.FERRY_MAX_UPLOAD_BYTES} bytes."
            )
        if expected_sha256:
            expected = expected_sha256.strip().lower()
            if expected != upload.sha256:
                raise ApplicationError(
                    f"Checksum mismatch: the received bytes have sha256 {upload.sha256}, not {expected}. "
                    "Nothing was kept; upload again.",
                    code="checksum_mismatch",
                    details={checksum_field: ["Does not match the sha256 of the received bytes."]},
                )
    except BaseException:
        upload.close()
        raise
    return _store_spooled(
        upload=upload, workspace=workspace, owner=user, name=name, file_type=file_type
    )


def _store_spooled(
    *,
    upload: SpooledUpload,
    workspace: Workspace,
    owner: User,
    name: str,
    file_type: str | None,
    file_id: uuid.UUID | None = None,
    produced_by: Any = None,
    key: str | None = None,
    resource_type: str = "",
) -> File:
    """Type-check a spooled file, move it into storage and record it (closing the spool)."""
    md5 = ""
    try:
        kind = FileType(file_type) if file_type else guess_file_type(name)
        reason = check_content(upload.temporary_file_path(), kind, name)
        file_id = file_id or uuid.uuid4()
        content_type = content_type_for(name, kind)
        location = locations.workspace_location(workspace)
        if location.is_local:
            uri = storage.save_object(storage.object_key(file_id), upload)
        else:
            uri, info = storage.save_to_location(
                location,
                key or locations.object_key(workspace.pk, file_id, name),
                upload,
                content_type,
            )
            md5 = info.md5 or ""
    finally:
        upload.close()
    try:
        with transaction.atomic():
            created = File.objects.create(
                id=file_id,
                workspace=workspace,
                owner=owner,
                name=name,
                size=upload.received,
                sha256=upload.sha256,
                md5=md5,
                content_type=content_type,
                file_type=kind,
                resource_type=resource_type,
                # A job's result stays pending (hidden) until the job succeeds: see
                # file_publish_results; its check's verdict waits in invalid_reason.
                status=(
                    FileStatus.PENDING
                    if produced_by is not None
                    else FileStatus.INVALID
                    if reason
                    else FileStatus.READY
                ),
                invalid_reason=reason,
                storage_uri=uri,
                produced_by=produced_by,
            )
            file_created(created)
        return created
    except IntegrityError:
        found = File.objects.filter(pk=file_id).first()
        if found is not None:  # a concurrent finalize recorded it (same id, same key): keep it
            return found
        storage.delete_object(uri)
        raise
    except BaseException:
        if not File.objects.filter(storage_uri=uri).exists():
            storage.delete_object(uri)
        raise


def _spool_chunks(name: str, chunks: Iterable[bytes]) -> SpooledUpload:
    """Spool bytes to a hashed temporary file (closed again if reading fails)."""
    upload = SpooledUpload(name, None)
    try:
        for chunk in chunks:
            upload.append(chunk)
        upload.finish()
    except BaseException:
        upload.close()
        raise
    return upload


def file_register_result(
    *,
    path: str,
    workspace: Workspace,
    owner: User,
    name: str,
    file_type: str | None,
    file_id: uuid.UUID,
    produced_by: Any,
    key: str | None = None,
    resource_type: str = "",
) -> File:
    """Copy a job's result file into storage as a File with provenance (``resource_type``: its
    WebMEV resource type, for the outputs of WebMEV operations). Idempotent per
    ``file_id`` (a finalize step that is repeated after a crash finds the first copy)."""
    existing = File.objects.filter(pk=file_id).first()
    if existing is not None:
        return existing
    with open(path, "rb") as source:
        upload = _spool_chunks(name, iter(lambda: source.read(4 * 1024 * 1024), b""))
    safe_name = clean_file_name(name)
    return _store_spooled(
        upload=upload,
        workspace=workspace,
        owner=owner,
        name=safe_name,
        file_type=file_type,
        file_id=file_id,
        produced_by=produced_by,
        key=key,
        resource_type=resource_type,
    )


def file_register_object(
    *,
    uri: str,
    workspace: Workspace,
    owner: User,
    name: str,
    file_type: str | None,
    file_id: uuid.UUID,
    produced_by: Any,
    key: str,
    resource_type: str = "",
) -> File:
    """Relocate an object a remote engine left in a bucket into the workspace's location and
    record it as a File with provenance (``resource_type``: its WebMEV resource type).

    Within one provider reachable with the same settings, a server-side copy (the bytes never
    pass through Ferry); otherwise a streamed copy in bounded memory. Either way the copy is
    verified by checksum. Idempotent per ``file_id``: a repeated call after a crash finds the
    File, or finds the copied object and only records it.
    """
    existing = File.objects.filter(pk=file_id).first()
    if existing is not None:
        return existing
    safe_name = clean_file_name(name)
    source_location, source_ref = locations.resolve(uri)
    target = locations.workspace_location(workspace)
    kind = FileType(file_type) if file_type else guess_file_type(safe_name)
    content_type = content_type_for(safe_name, kind)
    if target.is_local:
        upload = _spool_chunks(safe_name, source_location.client().open_read(source_ref))
        return _store_spooled(
            upload=upload,
            workspace=workspace,
            owner=owner,
            name=safe_name,
            file_type=file_type,
            file_id=file_id,
            produced_by=produced_by,
            resource_type=resource_type,
        )
    destination = target.ref().child(key)
    if locations.same_account(source_location, target):
        info = target.client().copy(source_ref, destination)
    else:
        from .storage.buckets import streamed_copy

        info = streamed_copy(
            source_location.client(),
            source_ref,
            target.client(),
            destination,
            content_type=content_type,
        )
    try:
        return File.objects.create(
            id=file_id,
            workspace=workspace,
            owner=owner,
            name=safe_name,
            size=info.size,
            sha256=info.sha256 or info.server_sha256 or "",
            md5=info.md5 or "",
            crc32c=info.crc32c or "",
            content_type=content_type,
            file_type=kind,
            status=FileStatus.PENDING,  # published with the job's success
            storage_uri=destination.uri,
            produced_by=produced_by,
            resource_type=resource_type,
        )
    except IntegrityError:  # a concurrent finalize recorded it first
        found = File.objects.filter(pk=file_id).first()
        if found is None:
            raise
        return found


def file_publish_results(*, job: Any) -> None:
    """Make a job's results visible: run inside the transaction that records its success, so
    no result is ever ready while its job is not."""
    for file in File.objects.filter(produced_by=job, status=FileStatus.PENDING).order_by("pk"):
        verdict = FileStatus.INVALID if file.invalid_reason else FileStatus.READY
        file_transition(file, verdict, expected=FileStatus.PENDING)


def file_discard_results(*, job: Any) -> int:
    """Remove the unpublished results (and their objects) of a job that ended otherwise than
    in success: a finalize interrupted by a crash or a cancel may have stored some."""
    unpublished = list(File.objects.filter(produced_by=job, status=FileStatus.PENDING))
    for file in unpublished:
        file_delete(file=file)
    return len(unpublished)


def file_update(
    *,
    user: User,
    file: File,
    name: str | None = None,
    workspace: Workspace | None = None,
    resource_type: str | None = None,
) -> File:
    """Rename a file, move it to another workspace the user can write, and/or say its WebMEV
    resource type."""
    if name is not None:
        file.name = clean_file_name(name)
    if resource_type is not None:
        file.resource_type = resource_type
    if workspace is not None and workspace.pk != file.workspace_id:
        require_write(user, workspace)
        file.workspace = workspace
    file.save()
    return file


def file_delete(*, file: File) -> None:
    """Delete a File, and its stored object when Ferry owns it (not for imported objects)."""
    uri, managed = file.storage_uri, file.managed
    with transaction.atomic():
        file.delete()
        if managed:
            transaction.on_commit(lambda: storage.delete_object(uri))
