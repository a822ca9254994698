"""``Operation.image_origin``: whether the image was built or found on the engine under its
published name (WebMEV's). Every docker operation added before was built."""

from django.db import migrations, models


def mark_existing_images_built(apps, schema_editor):
    Operation = apps.get_model("operations", "Operation")
    Operation.objects.exclude(image="").update(image_origin="built")


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0007_job_executor_unreachable"),
    ]

    operations = [
        migrations.AddField(
            model_name="operation",
            name="image_origin",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "No image recorded (a WDL operation)"),
                    ("built", "Built from the source's Dockerfile"),
                    ("found", "Found on the engine under its published name"),
                ],
                help_text="Whether the image was built from the source or found on the engine under its published name (empty for WDL operations).",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="operation",
            name="image",
            field=models.CharField(
                blank=True, help_text="The container image its jobs run.", max_length=300
            ),
        ),
        migrations.RunPython(mark_existing_images_built, migrations.RunPython.noop),
    ]
