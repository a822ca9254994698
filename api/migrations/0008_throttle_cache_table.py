"""Create the database cache table(s) named in settings.CACHES (rate-limit counters live there)."""

from typing import Any

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps: Any, schema_editor: Any) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("api", "0007_discarded_upload")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
