import contextlib
import os

from django.apps import AppConfig
from django.conf import settings
from django.contrib.admin import apps as admin_apps


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ferry: users, workspaces and files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI extension for API tokens)

        # Uploads are spooled here; /readyz reports it if it can't be created.
        with contextlib.suppress(OSError):
            os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)


class FerryAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin whose sign-in form is rate-limited (api.admin_site)."""

    default = False  # ApiConfig stays this module's app config for "api"
    default_site = "api.admin_site.FerryAdminSite"
