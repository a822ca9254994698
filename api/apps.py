from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ferry: users, workspaces and files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.db.backends.signals import connection_created

        from .locations import check_import_locations

        checks.register(check_import_locations)

        from . import schema  # noqa: F401  (registers the OpenAPI extension for API tokens)
        from .private_paths import ensure_private_dirs, protect_sqlite_file

        # The var dir, storage root and upload spool, private; /readyz reports them if they
        # can't be created.
        ensure_private_dirs()
        connection_created.connect(protect_sqlite_file, dispatch_uid="ferry-private-sqlite")


class FerryAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin whose sign-in form is rate-limited (api.admin_site)."""

    default = False  # ApiConfig stays this module's app config for "api"
    default_site = "api.admin_site.FerryAdminSite"
