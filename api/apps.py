import contextlib
import os

from django.apps import AppConfig
from django.conf import settings


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ferry: users, workspaces and files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from . import schema  # noqa: F401  (registers the OpenAPI extension for API tokens)
        from .locations import check_import_locations

        checks.register(check_import_locations)

        # Uploads are spooled here; /readyz reports it if it can't be created.
        with contextlib.suppress(OSError):
            os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
