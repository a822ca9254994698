from django.db import migrations


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Direct uploads that were never completed: remove their objects and records.
    Schedule.objects.update_or_create(
        name="ferry-expire-pending-uploads",
        defaults={"func": "api.transfers.pending_uploads_expire", "schedule_type": "I", "minutes": 15, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="ferry-expire-pending-uploads").delete()


class Migration(migrations.Migration):
    dependencies = [("api", "0004_file_locations_direct_uploads"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
