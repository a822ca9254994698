from django.db import migrations

SCHEDULES = {
    # Upload spool files of processes that were killed: remove them.
    "ferry-sweep-upload-spool": {"func": "api.spool.spool_sweep_task", "minutes": 10},
    # Idempotency keys past FERRY_IDEMPOTENCY_KEY_TTL_S: forget them.
    "ferry-expire-idempotency-keys": {"func": "api.idempotency.idempotency_keys_expire", "minutes": 60},
}


def add_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, fields in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name, defaults={**fields, "schedule_type": "I", "repeats": -1}
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [("api", "0009_idempotency_key"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(add_schedules, remove_schedules)]
