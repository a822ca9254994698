"""The operations catalog, jobs (executed operations) and the event log."""

from __future__ import annotations

import uuid
from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils import timezone

# The one event table lives in api (written through api.events); re-exported for callers.
from api.hydration import DirectFromDb
from api.models import Event as Event

from .states import ACTIVE, JobStatus

CROMWELL_ANY = "cromwell:*"  # Operation.executors: any registered Cromwell server


class OperationMode(models.TextChoices):
    DOCKER = "docker", "Docker container"
    WDL = "wdl", "WDL workflow"


class ImageOrigin(models.TextChoices):
    """How a docker operation got its image."""

    NONE = "", "No image recorded (a WDL operation)"
    BUILT = "built", "Built from the source's Dockerfile"
    # Already on the engine under the name its publisher gives the image of this commit
    # (WebMEV: ghcr.io/web-mev/<repo>:sha-<commit>), as WebMEV pulls it instead of building.
    FOUND = "found", "Found on the engine under its published name"


class Operation(DirectFromDb, models.Model):
    """A catalog entry: immutable once added. A new source revision is a new row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100)
    version = models.CharField(max_length=50, help_text="The version the spec declares.")
    revision = models.CharField(
        max_length=64, help_text="Git commit, or the sha256 of the source folder's content."
    )
    description = models.TextField(blank=True)
    mode = models.CharField(max_length=10, choices=OperationMode.choices)
    spec = models.JSONField(
        help_text="Ferry's normalized operation spec (inputs, outputs, command)."
    )
    image = models.CharField(
        max_length=300, blank=True, help_text="The container image its jobs run."
    )
    image_origin = models.CharField(
        max_length=10,
        blank=True,
        choices=ImageOrigin.choices,
        help_text="Whether the image was built from the source or found on the engine under its "
        "published name (empty for WDL operations).",
    )
    source = models.CharField(max_length=1000, help_text="Folder path or git repository URL.")
    executors = models.JSONField(
        default=list,
        blank=True,
        help_text="The executors its jobs may run on when not every executor of its mode can: "
        f'["{CROMWELL_ANY}"] for a workflow miniwdl refuses and a Cromwell server accepted '
        "(any registered Cromwell server). Empty: every executor that runs its mode.",
    )
    build_log = models.TextField(blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    hidden = models.BooleanField(
        default=False,
        help_text="Hidden (retired) operations can't start new jobs; past jobs keep them.",
    )

    class Meta:
        ordering = ["name", "-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="operation_created_idx")]
        constraints = [
            models.UniqueConstraint(fields=["name", "revision"], name="one_operation_per_revision")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.revision[:10]})"


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        return self.filter(status__in=[s.value for s in ACTIVE])


class Job(DirectFromDb, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    workspace = models.ForeignKey("api.Workspace", on_delete=models.PROTECT, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    status = models.CharField(
        max_length=12,
        choices=[(s.value, s.name.title()) for s in JobStatus],
        default=JobStatus.QUEUED.value,
    )
    inputs = models.JSONField(default=dict, blank=True, help_text="Inputs as validated.")
    outputs = models.JSONField(default=dict, blank=True)
    executor = models.CharField(max_length=50, blank=True, help_text="Alias in settings.EXECUTORS.")
    external_id = models.CharField(max_length=200, blank=True)
    run_spec = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the executor runs (image, command, mounts, limits).",
    )
    error_message = models.TextField(blank=True, help_text="For the user.")
    error_detail = models.TextField(blank=True, help_text="For staff.")
    executor_unreachable_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Since when the job's executor (or the storage) has not answered; the job "
        "keeps its state meanwhile. Empty when it answers.",
    )
    executor_unreachable_what = models.CharField(
        max_length=100,
        blank=True,
        help_text='What is not answering, as users are told, e.g. "The Docker engine".',
    )
    observed_state = models.CharField(
        max_length=20,
        blank=True,
        help_text="What the executor last said of the job's run (pending, running, exited, "
        "missing); written by the poll loop when it changes.",
    )
    observed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the executor's answer last changed."
    )
    stdout_tail = models.TextField(blank=True)
    stderr_tail = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cleanup_pending = models.BooleanField(
        default=False,
        help_text="The job ended but its run's leftovers (container, work dir, staged inputs) "
        "are not yet removed; set in the same write as the ending, cleared once they are gone. "
        "A worker killed in between leaves it set, and the reconciler cleans up.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # The worker's (status, executor); then one per ordering the jobs list offers, alone
        # (all jobs a user sees) and with the workspace and status filters.
        indexes = [
            models.Index(fields=["status", "executor"]),
            # The poll loop's rounds: one executor's polled jobs in id order, a page at a time.
            models.Index(
                fields=["executor", "id"],
                name="job_polled_round_idx",
                condition=models.Q(status__in=["submitted", "running", "cancelling"]),
            ),
            # The reconciler's sweep of runs whose worker died before it cleaned up after them.
            models.Index(
                fields=["updated_at"],
                name="job_cleanup_pending_idx",
                condition=models.Q(cleanup_pending=True),
            ),
            models.Index(fields=["-created_at"], name="job_created_idx"),
            models.Index(fields=["workspace", "-created_at"], name="job_ws_created_idx"),
            models.Index(fields=["status", "-created_at"], name="job_status_created_idx"),
            models.Index(
                fields=["workspace", "status", "-created_at"], name="job_ws_status_created_idx"
            ),
            models.Index(fields=["finished_at"], name="job_finished_idx"),
            models.Index(fields=["workspace", "finished_at"], name="job_ws_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status})"

    def executor_notice(self) -> str:
        """What users are told while the job's engine (or the storage) can't be reached, e.g.
        "The Docker engine is not answering (since 19:02 UTC); the job will continue when it
        is back." Empty when it is reachable."""
        if self.executor_unreachable_since is None:
            return ""
        utc = self.executor_unreachable_since.astimezone(UTC)
        today = timezone.now().astimezone(UTC).date()
        since = f"{utc:%H:%M}" if utc.date() == today else f"{utc:%Y-%m-%d %H:%M}"
        # (the fallback is executors.base.Executor.engine_name)
        what = self.executor_unreachable_what or "The job's executor"
        return (
            f"{what} is not answering (since {since} UTC); the job will continue when it is back."
        )


class Lease(models.Model):
    """A named, expiring lock held by one worker (e.g. the poll cycle) across clusters."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'} until {self.expires_at}"


class ExecutorHealth(models.Model):
    """What the poll loop last saw of one executor (by alias), and its running totals; read by
    /metrics, GET /api/executors/ and the staff's view of a job. Kept in the database because
    the worker that polls is not the process that serves those requests."""

    alias = models.CharField(max_length=100, primary_key=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_poll_seconds = models.FloatField(default=0.0)
    polls_total = models.BigIntegerField(default=0)
    poll_seconds_total = models.FloatField(default=0.0)
    errors_total = models.BigIntegerField(default=0)
    healthy = models.BooleanField(null=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.alias} ({'healthy' if self.healthy else 'not answering'})"


class WorkerCounter(models.Model):
    """A running total the worker adds to (e.g. bytes relocated), exposed by /metrics."""

    name = models.CharField(max_length=100, primary_key=True)
    value = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class WorkerHeartbeat(models.Model):
    """A worker process that is alive writes here every FERRY_WORKER_HEARTBEAT_S."""

    holder = models.CharField(max_length=100, primary_key=True)
    beat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.holder} at {self.beat_at}"


class ServerState(models.TextChoices):
    ACTIVE = "active", "Active: takes new jobs"
    DRAINING = "draining", "Draining: finishes its jobs, takes no new ones"


class CromwellServer(models.Model):
    """A Cromwell server an admin registered; jobs routed to it run as executor
    ``cromwell:<name>``. Its login (if any) lives encrypted in a ``cromwell`` Credential."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=40, unique=True)
    url = models.URLField(max_length=500, help_text="Base URL, e.g. https://cromwell.example.org")
    credential = models.ForeignKey(
        "api.Credential",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A cromwell credential holding username/password or a token.",
    )
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Executor options: inputs_location (bucket prefix its backend reads), "
        "workflow_options, query_page_size, timeouts.",
    )
    state = models.CharField(max_length=10, choices=ServerState.choices, default="active")
    checked_at = models.DateTimeField(null=True, blank=True)
    healthy = models.BooleanField(null=True)
    version = models.CharField(max_length=100, blank=True)
    health_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["-created_at"], name="cromwell_server_created_idx")]

    def __str__(self) -> str:
        return f"Cromwell {self.name} ({self.url})"

    @property
    def executor_alias(self) -> str:
        return f"{CROMWELL_ALIAS_PREFIX}{self.name}"


CROMWELL_ALIAS_PREFIX = "cromwell:"
