from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0013_job_polled_round_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="cleanup_pending",
            field=models.BooleanField(
                default=False,
                help_text="The job ended but its run's leftovers (container, work dir, staged "
                "inputs) are not yet removed; set in the same write as the ending, cleared once "
                "they are gone. A worker killed in between leaves it set, and the reconciler "
                "cleans up.",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(cleanup_pending=True),
                fields=["updated_at"],
                name="job_cleanup_pending_idx",
            ),
        ),
    ]
