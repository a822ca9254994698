from django.db import migrations


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # A safety net: the poll loop normally keeps itself going while jobs are active and is
    # started by every new job; this restarts it within a minute after a worker crash.
    Schedule.objects.update_or_create(
        name="ferry-poll-active",
        defaults={"func": "operations.runner.poll_active", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="ferry-poll-active").delete()


class Migration(migrations.Migration):
    dependencies = [("operations", "0003_lease"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
