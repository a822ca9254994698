"""api 0017 merges operations.Event (jobs) and api.FileEvent (files) into api.Event: every row
is kept, in the order the changes happened, with when it happened."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from api.models import Event, File, User, Workspace
from operations.models import Job

BEFORE = [
    ("api", "0016_workspace_file_count_triggers"),
    ("operations", "0009_job_and_operation_list_indexes"),
]


@pytest.mark.django_db(transaction=True)  # the migration drops tables written here
def test_both_old_event_tables_are_merged_in_time_order(
    users: dict[str, User], workspace: Workspace, file: File
) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        job = old.get_model("operations", "Job").objects.create(
            workspace_id=workspace.pk, owner_id=users["owner"].pk, status="queued"
        )
        job_events = old.get_model("operations", "Event")
        file_events = old.get_model("api", "FileEvent")
        stamps = [datetime(2026, 12, 6, 10, minute, tzinfo=UTC) for minute in range(3)]
        late = job_events.objects.create(
            workspace_id=workspace.pk, job_id=job.pk, kind="job.status", payload={"to": "running"}
        )
        early = job_events.objects.create(
            workspace_id=workspace.pk, job_id=job.pk, kind="job.status", payload={"to": "queued"}
        )
        middle = file_events.objects.create(
            workspace_id=workspace.pk, file_id=file.pk, kind="file.status", payload={"to": "ready"}
        )
        job_events.objects.filter(pk=early.pk).update(created_at=stamps[0])
        file_events.objects.filter(pk=middle.pk).update(created_at=stamps[1])
        job_events.objects.filter(pk=late.pk).update(created_at=stamps[2])
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    merged = list(Event.objects.order_by("id"))
    assert [(e.kind, e.payload["to"]) for e in merged] == [
        ("job.status", "queued"),
        ("file.status", "ready"),
        ("job.status", "running"),
    ]
    assert [e.created_at for e in merged] == stamps
    assert merged[0].job_id == merged[2].job_id == job.pk
    assert merged[1].file_id == file.pk
    assert Job.objects.get(pk=job.pk).events.count() == 2
