from django.db import migrations


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Registered Cromwell servers: refresh their health for the admin list.
    Schedule.objects.update_or_create(
        name="ferry-check-cromwell-servers",
        defaults={"func": "operations.cromwell_servers.check_all_servers", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="ferry-check-cromwell-servers").delete()


class Migration(migrations.Migration):
    dependencies = [("operations", "0005_cromwell_server"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
