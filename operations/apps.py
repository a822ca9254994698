from django.apps import AppConfig
from django.core import checks


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Ferry: operations and jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from executors.checks import check_executors

        checks.register(check_executors)
