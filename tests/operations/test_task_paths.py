"""Every dotted task path Ferry stores (schedules) or may find queued from an older version resolves
to a function: a module move must not strand a schedule or a queued task."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string
from django_q.models import Schedule


@pytest.mark.django_db
def test_every_schedule_names_an_importable_function() -> None:
    funcs = list(Schedule.objects.values_list("func", flat=True))
    assert "api.storage.transfers.pending_uploads_expire" in funcs
    assert "api.storage.spool.spool_sweep_task" in funcs
    for func in funcs:
        assert callable(import_string(func)), func


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("api.transfers.verify_upload", "api.storage.transfers.verify_upload"),
        ("api.transfers.pending_uploads_expire", "api.storage.transfers.pending_uploads_expire"),
        ("api.spool.spool_sweep_task", "api.storage.spool.spool_sweep_task"),
    ],
)
def test_task_paths_before_the_storage_package_still_run(old: str, new: str) -> None:
    assert import_string(old) is import_string(new)
