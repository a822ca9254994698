"""Users, API tokens, workspaces, memberships and files."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from .hydration import DirectFromDb


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(DirectFromDb, AbstractBaseUser, PermissionsMixin):
    """A person signing in with an email address."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ApiToken(DirectFromDb, models.Model):
    """A personal token for scripts. Only a hash of the secret is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text="First characters of the token, to recognise it."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_user_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Workspace(DirectFromDb, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_workspaces"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )
    storage_location = models.CharField(
        max_length=1024,
        blank=True,
        help_text="Bucket prefix for new files and job results (s3://…, gs://…); "
        "empty: the site's default location.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="workspace_created_idx"),
            models.Index(fields=["name"], name="workspace_name_idx"),
            models.Index(fields=["updated_at"], name="workspace_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class WorkspaceFileCount(models.Model):
    """How many files a workspace's members see in its list (every file but a job's results
    before the job succeeded, as ``selectors.files_visible_to``). Kept by database triggers on
    ``api_file`` (migration 0015), in the same transaction as each insert, delete, move between
    workspaces and publication, whoever writes the row (bulk inserts and cascades too), so
    listing workspaces never counts their files. A table of its own: saving a Workspace never
    overwrites it, and adding files doesn't lock the workspace row."""

    workspace = models.OneToOneField(
        Workspace, primary_key=True, on_delete=models.CASCADE, related_name="file_count_row"
    )
    files = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.files}"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


WRITE_ROLES = frozenset({Role.OWNER, Role.EDITOR})


class Membership(DirectFromDb, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="membership_ws_created_idx"),
            models.Index(fields=["workspace", "role"], name="membership_ws_role_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.workspace}"


class FileType(models.TextChoices):
    TABLE = "table", "Table (TSV/CSV with a header)"
    JSON = "json", "JSON document"
    TEXT = "text", "Plain text (UTF-8)"
    BINARY = "binary", "Generic binary"


class FileStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"


class File(DirectFromDb, models.Model):
    """An object in storage, registered in a workspace."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="files")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="files"
    )
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True, help_text="Empty when not known.")
    md5 = models.CharField(max_length=32, blank=True, help_text="As the bucket reported it.")
    crc32c = models.CharField(max_length=8, blank=True, help_text="As GCS reported it.")
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    file_type = models.CharField(max_length=10, choices=FileType.choices)
    resource_type = models.CharField(
        max_length=32,
        blank=True,
        help_text="WebMEV's resource type (MTX, I_MTX, EXP_MTX…) of a file a WebMEV operation "
        "produced; empty for others.",
    )
    status = models.CharField(max_length=10, choices=FileStatus.choices, default=FileStatus.PENDING)
    invalid_reason = models.TextField(blank=True)
    storage_uri = models.CharField(max_length=2048, db_index=True)
    managed = models.BooleanField(
        default=True,
        help_text="Ferry owns the stored object and deletes it with the File; "
        "false for imported objects, which stay where they are.",
    )
    # A direct upload in progress: what was declared and signed (multipart upload id, parts).
    pending_upload = models.JSONField(null=True, blank=True, editable=False)
    pending_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    produced_by = models.ForeignKey(
        "operations.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="output_files",
        help_text="The job that produced this file (provenance).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # One per ordering the files list offers, for all files (staff) and one workspace's.
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["-created_at"], name="file_created_idx"),
            models.Index(fields=["name", "created_at"], name="file_name_idx"),
            models.Index(fields=["size", "created_at"], name="file_size_idx"),
            models.Index(fields=["updated_at"], name="file_updated_idx"),
            models.Index(fields=["workspace", "name"], name="file_ws_name_idx"),
            models.Index(fields=["workspace", "size"], name="file_ws_size_idx"),
            models.Index(fields=["workspace", "updated_at"], name="file_ws_updated_idx"),
        ]
        constraints = [
            # An object Ferry owns belongs to one File; an imported object may be registered in
            # several workspaces (once each).
            models.UniqueConstraint(
                fields=["storage_uri"],
                condition=models.Q(managed=True),
                name="one_file_per_managed_object",
            ),
            models.UniqueConstraint(
                fields=["workspace", "storage_uri"],
                condition=models.Q(managed=False),
                name="one_import_per_workspace",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CredentialKind(models.TextChoices):
    S3 = "s3", "S3 or S3-compatible bucket"
    GCS = "gcs", "Google Cloud Storage bucket"
    CROMWELL = "cromwell", "Cromwell server"


class Credential(models.Model):
    """A secret an admin registers once (bucket keys, a Cromwell login). The secret is stored
    encrypted (Fernet) and never serialized back; ``config`` holds what isn't secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=CredentialKind.choices)
    config = models.JSONField(
        default=dict, blank=True, help_text="Not secret: location, endpoint URL, region, project…"
    )
    secret_ciphertext = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_ok = models.BooleanField(null=True)
    check_message = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["-created_at"], name="credential_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def __repr__(self) -> str:  # never show the ciphertext either
        return f"<Credential {self.name} ({self.kind})>"


class DiscardedUpload(models.Model):
    """Where a removed direct upload pointed: its signed URL may still be used until ``until``,
    so the expiry sweep deletes whatever lands there afterwards."""

    uri = models.CharField(max_length=2048)
    until = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.uri} (until {self.until})"


class IdempotencyKey(models.Model):
    """A create answered for an ``Idempotency-Key`` header: recorded in the same transaction
    as what it created, so a retry with the same key and request gets this answer again
    instead of creating twice (api.idempotency)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    request_sha256 = models.CharField(
        max_length=64, help_text="Of the method, path, query and body (uploads: their sha256)."
    )
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"


class Event(models.Model):
    """Append-only: one row per visible change (a job's status or notice, a file becoming ready
    or invalid, a membership), written by ``api.events.record_event`` in the transaction of the
    change. The id is monotonic and is the SSE ``id`` of ``GET /api/events/``; ids commit in
    id order (``record_event`` serializes the writers), so a cursor never skips a late commit.

    One table for every kind, so the stream reads one sequence. ``job`` names operations' Job
    by its app label only (no import: api stays below operations)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, null=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(
        "operations.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    file = models.ForeignKey(
        File, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["workspace", "id"], name="event_workspace_id")]

    def __str__(self) -> str:
        return f"{self.id} {self.kind}"


class FileEventManager(models.Manager["FileEvent"]):
    def get_queryset(self) -> models.QuerySet[FileEvent]:
        return super().get_queryset().filter(kind__startswith="file.")


class FileEvent(Event):
    """The file events among all Events (``file.status``)."""

    objects: ClassVar[FileEventManager] = FileEventManager()

    class Meta:
        proxy = True
        ordering = ["id"]


class ElementKind(models.TextChoices):
    OBSERVATION = "observation", "Observations (samples)"
    FEATURE = "feature", "Features (genes, …)"


class ElementSet(models.Model):
    """A named set of observations (samples) or features (genes) kept in a workspace, each
    element an id with typed attributes (WebMEV's ObservationSet/FeatureSet). ``elements`` holds
    the normalized list checked by :mod:`api.element_sets.values`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="element_sets")
    kind = models.CharField(max_length=12, choices=ElementKind.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    elements = models.JSONField(default=list)
    element_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="element_sets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # One per ordering the sets list offers, for all sets (staff) and one workspace's.
        indexes = [
            models.Index(fields=["workspace", "kind", "-created_at"]),
            models.Index(fields=["-created_at"], name="element_set_created_idx"),
            models.Index(fields=["name"], name="element_set_name_idx"),
            models.Index(fields=["updated_at"], name="element_set_updated_idx"),
            models.Index(fields=["element_count"], name="element_set_count_idx"),
            models.Index(fields=["workspace", "-created_at"], name="element_set_ws_created_idx"),
            models.Index(fields=["workspace", "name"], name="element_set_ws_name_idx"),
            models.Index(fields=["workspace", "updated_at"], name="element_set_ws_updated_idx"),
            models.Index(fields=["workspace", "element_count"], name="element_set_ws_count_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "name"], name="one_set_name_per_workspace_and_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} set {self.name}"


class StreamWatch(models.Model):
    """Someone follows a workspace's or a job's events right now (an open ``GET /api/events/``),
    so the worker polls those jobs' executors more often (``operations.runner``). The server
    process that holds the stream writes its rows when it opens, renews ``expires_at`` while it
    is open and deletes them when it closes; a crashed process's rows simply expire. ``job``
    names operations' Job by value only (api stays below operations)."""

    id = models.BigAutoField(primary_key=True)
    workspace_id = models.UUIDField(null=True, blank=True)
    job_id = models.UUIDField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"watch of {self.job_id or self.workspace_id} until {self.expires_at}"
