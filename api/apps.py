from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ferry: users, workspaces and files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.db.backends.signals import connection_created

        from .storage.locations import check_import_locations

        checks.register(check_import_locations)

        from .event_stream import StreamClientsCollector
        from .probes import register_metrics_collector

        register_metrics_collector(StreamClientsCollector())  # /metrics: open event streams

        from . import schema  # noqa: F401  (registers the OpenAPI extension for API tokens)
        from .private_paths import ensure_private_dirs, protect_sqlite_file

        # The var dir, storage root and upload spool, private; /readyz reports them if they
        # can't be created.
        ensure_private_dirs()
        connection_created.connect(protect_sqlite_file, dispatch_uid="ferry-private-sqlite")

        from .pg_timestamps import use_c_timestamp_parser

        # Lists read hundreds of times a page: psycopg's C parser instead of its Python one.
        connection_created.connect(use_c_timestamp_parser, dispatch_uid="ferry-c-timestamps")

        from django_q.signals import post_spawn

        # A worker process started: remove what killed processes left in the upload spool.
        post_spawn.connect(_sweep_spool_on_worker_start, dispatch_uid="ferry-sweep-spool")


def _sweep_spool_on_worker_start(sender: Any, **kwargs: Any) -> None:
    from django_q.conf import Conf

    if Conf.SYNC:  # inline tasks (tests) announce a "worker" per task
        return
    from .storage.spool import spool_sweep_at_start

    spool_sweep_at_start()


class FerryAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin whose sign-in form is rate-limited (api.admin_site)."""

    default = False  # ApiConfig stays this module's app config for "api"
    default_site = "api.admin_site.FerryAdminSite"
