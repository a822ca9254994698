"""Jobs (executed operations). The catalog and executors build on this record."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from .states import ACTIVE, JobStatus


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        return self.filter(status__in=[s.value for s in ACTIVE])


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("api.Workspace", on_delete=models.PROTECT, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    status = models.CharField(
        max_length=12,
        choices=[(s.value, s.name.title()) for s in JobStatus],
        default=JobStatus.QUEUED.value,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status})"
