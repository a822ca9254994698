from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from .models import (
    ApiToken,
    Credential,
    DiscardedUpload,
    ElementSet,
    File,
    FileEvent,
    Membership,
    User,
    Workspace,
)


class FerryUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class FerryUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    add_form = FerryUserCreationForm
    form = FerryUserChangeForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "user__email", "prefix")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name", "created_by__email")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("workspace", "user", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("workspace__name", "user__email")


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "owner", "file_type", "status", "size", "created_at")
    list_filter = ("status", "file_type")
    search_fields = ("name", "sha256", "workspace__name", "owner__email")
    # status changes only through api.file_states (which records a FileEvent).
    readonly_fields = (
        "size",
        "sha256",
        "storage_uri",
        "status",
        "invalid_reason",
        "created_at",
        "updated_at",
    )


@admin.register(FileEvent)
class FileEventAdmin(admin.ModelAdmin):
    """Read-only: the events are the record of what happened."""

    list_display = ("id", "kind", "workspace", "file", "created_at")
    list_filter = ("kind",)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    """Secrets are set through the API (write-only); the admin never shows them."""

    list_display = ("name", "kind", "check_ok", "checked_at")
    list_filter = ("kind", "check_ok")
    exclude = ("secret_ciphertext",)
    readonly_fields = ("checked_at", "check_ok", "check_message", "created_by")


@admin.register(DiscardedUpload)
class DiscardedUploadAdmin(admin.ModelAdmin):
    list_display = ("uri", "until")
    search_fields = ("uri",)


@admin.register(ElementSet)
class ElementSetAdmin(admin.ModelAdmin):
    """Sample and gene sets: operators find and remove them; their elements change only through
    the API (api.element_sets.services checks every value), so here they are read-only."""

    list_display = ("name", "kind", "workspace", "element_count", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "workspace__name", "created_by__email")
    readonly_fields = (
        "workspace",
        "kind",
        "elements",
        "element_count",
        "created_by",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: Any) -> bool:
        return False
