from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.exceptions import ApplicationError
from api.models import User

from .models import CromwellServer, Event, Job, Lease, Operation
from .services import job_cancel, job_create
from .states import JobStatus


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "revision", "mode", "hidden", "created_at")
    list_filter = ("mode", "hidden")
    search_fields = ("name", "revision", "source")
    # Operations are immutable once added; only retiring them is an edit.
    readonly_fields = (
        "name",
        "version",
        "revision",
        "description",
        "mode",
        "spec",
        "image",
        "image_origin",
        "source",
        "build_log",
        "added_by",
        "created_at",
    )


def _operator(request: HttpRequest) -> User:
    """The signed-in staff member (the admin site lets no one else in)."""
    assert isinstance(request.user, User)
    return request.user


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never edited, added or deleted here: these rows change only through the services
    and the state machine (operations.transitions)."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "operation", "workspace", "owner", "status", "executor", "created_at")
    list_filter = ("status", "executor")
    search_fields = ("id", "workspace__name", "owner__email", "external_id")
    actions = ("cancel_jobs", "retry_jobs")

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Who may cancel or retry jobs here: operators with the change permission on jobs
        (the actions go through the services, as a workspace owner's requests do)."""
        return bool(request.user.has_perm("operations.change_job"))

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled, refused = 0, []
        for job in queryset:
            try:
                job_cancel(user=_operator(request), job=job)
            except ApplicationError as exc:
                refused.append(f"{job.pk}: {exc.message}")
            else:
                cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelling {cancelled} job(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Retry selected jobs", permissions=["operate"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """A failed or cancelled job stays as it is (its history); its retry is a new job with
        the same operation, workspace, inputs and executor, created by the job_create service
        on behalf of the operator."""
        created, refused = [], []
        for job in queryset.select_related("operation"):
            if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                refused.append(f"{job.pk}: it is {job.status}, only failed or cancelled jobs")
                continue
            if job.operation is None:
                refused.append(f"{job.pk}: its operation was removed")
                continue
            try:
                retry = job_create(
                    user=_operator(request),
                    operation=job.operation,
                    workspace_id=job.workspace_id,
                    inputs=job.inputs,
                    executor=job.executor or None,
                )
            except ApplicationError as exc:
                refused.append(f"{job.pk}: {exc.message}")
            else:
                created.append(f"{job.pk} as {retry.pk}")
        if created:
            self.message_user(
                request,
                "Retried as new jobs (the old ones are kept as they are): " + "; ".join(created),
                messages.SUCCESS,
            )
        if refused:
            self.message_user(request, "Not retried: " + "; ".join(refused), messages.WARNING)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "workspace", "job", "created_at")
    list_filter = ("kind",)


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "holder", "expires_at")


@admin.register(CromwellServer)
class CromwellServerAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "state", "healthy", "version", "checked_at")
    list_filter = ("state", "healthy")
    search_fields = ("name", "url")
    readonly_fields = ("checked_at", "healthy", "version", "health_message")
