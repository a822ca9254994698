"""``Job.executor_unreachable_since``/``_what``: the "executor unreachable" notice as columns
instead of a text prefix of ``error_detail``; existing prefixes are moved into them."""

import re
from datetime import UTC, datetime

from django.db import migrations, models

PREFIX = "executor unreachable since"
# What the runner wrote before: "executor unreachable since 2026-12-06 19:02:11 UTC: The Docker
# engine is not answering. <reason for staff>".
OLD_NOTICE = re.compile(
    r"^executor unreachable since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC: "
    r"(?:(.+?) is not answering\.)? ?(.*)$",
    re.DOTALL,
)


def move_prefix_to_columns(apps, schema_editor):
    Job = apps.get_model("operations", "Job")
    for job in Job.objects.filter(error_detail__startswith=PREFIX).only("pk", "error_detail"):
        match = OLD_NOTICE.match(job.error_detail)
        if match is None:
            continue
        since, what, reason = match.groups()
        what = what or "The job's executor"  # executors.base.Executor.engine_name
        Job.objects.filter(pk=job.pk).update(
            executor_unreachable_since=datetime.strptime(since, "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=UTC
            ),
            executor_unreachable_what=what[:100],
            error_detail=f"{what} is not answering. {reason}".strip(),
        )


def move_columns_to_prefix(apps, schema_editor):
    Job = apps.get_model("operations", "Job")
    for job in Job.objects.filter(executor_unreachable_since__isnull=False):
        Job.objects.filter(pk=job.pk).update(
            error_detail=f"{PREFIX} {job.executor_unreachable_since:%Y-%m-%d %H:%M:%S} UTC: "
            f"{job.error_detail}"
        )


class Migration(migrations.Migration):
    dependencies = [("operations", "0006_cromwell_health_schedule")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="executor_unreachable_since",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="Since when the job's executor (or the storage) has not answered; the "
                "job keeps its state meanwhile. Empty when it answers.",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="executor_unreachable_what",
            field=models.CharField(
                blank=True,
                max_length=100,
                help_text='What is not answering, as users are told, e.g. "The Docker engine".',
            ),
        ),
        migrations.RunPython(move_prefix_to_columns, move_columns_to_prefix),
    ]
