from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "owner", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = ("status",)
    search_fields = ("id", "workspace__name", "owner__email")
