from django.db import migrations

# The bytes modules moved into api/storage/ (issue 12): the schedules name their functions there.
RENAMED = {
    "api.transfers.pending_uploads_expire": "api.storage.transfers.pending_uploads_expire",
    "api.spool.spool_sweep_task": "api.storage.spool.spool_sweep_task",
}


def rename(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for old, new in RENAMED.items():
        Schedule.objects.filter(func=old).update(func=new)


def rename_back(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for old, new in RENAMED.items():
        Schedule.objects.filter(func=new).update(func=old)


class Migration(migrations.Migration):
    dependencies = [("api", "0011_file_events"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(rename, rename_back)]
