from django.contrib import admin

from .models import CromwellServer, Event, Job, Lease, Operation


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
        "source",
        "build_log",
        "added_by",
        "created_at",
    )


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "operation", "workspace", "owner", "status", "created_at")
    list_filter = ("status", "executor")
    # Status moves only through operations.transitions.
    readonly_fields = (
        "status",
        "external_id",
        "attempts",
        "submitted_at",
        "started_at",
        "finished_at",
    )
    search_fields = ("id", "workspace__name", "owner__email", "external_id")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "workspace", "job", "created_at")
    list_filter = ("kind",)


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ("name", "holder", "expires_at")


@admin.register(CromwellServer)
class CromwellServerAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "state", "healthy", "version", "checked_at")
    list_filter = ("state", "healthy")
    search_fields = ("name", "url")
    readonly_fields = ("checked_at", "healthy", "version", "health_message")
