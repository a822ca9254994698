"""Every long-lived Ferry process exempts what it built at start from the cycle collector
(config.heap): the web entry points when they are imported, django-q2's workers when spawned."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_q.conf import Conf
from django_q.signals import post_spawn

from operations.apps import _freeze_startup_heap

ROOT = Path(__file__).resolve().parents[2]
SOME_OF_DJANGO = 20_000  # objects: Django, DRF and Ferry's modules are many more


@pytest.mark.parametrize("module", ["config.asgi", "config.wsgi"])
def test_a_web_process_freezes_its_start_up_heap(module: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "FERRY_TEST_STORAGE_ROOT": str(tmp_path),
    }
    script = f"import gc, {module}; print(gc.get_freeze_count())"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > SOME_OF_DJANGO


def test_a_spawned_task_worker_freezes_its_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    # (the receiver itself: the signal would also start the worker's recovery here)
    assert any(entry[0][0] == "ferry-freeze-startup-heap" for entry in post_spawn.receivers)
    monkeypatch.setattr(Conf, "SYNC", False)
    gc.unfreeze()
    try:
        _freeze_startup_heap(sender="django_q", proc_name="Process-test")
        assert gc.get_freeze_count() > SOME_OF_DJANGO
    finally:
        gc.unfreeze()


def test_inline_tasks_freeze_nothing() -> None:
    assert Conf.SYNC  # the test settings run tasks inline, each announcing a "worker"
    gc.unfreeze()
    _freeze_startup_heap(sender="django_q", proc_name="inline")
    assert gc.get_freeze_count() == 0
