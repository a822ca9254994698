"""Tests: Postgres from DATABASE_URL (the harness starts a private cluster), fast hashing."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import STORAGES, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_tmp = Path(
    env.str("FERRY_TEST_STORAGE_ROOT", default="") or tempfile.mkdtemp(prefix="ferry-test-")
)
FERRY_STORAGE_ROOT = _tmp
FERRY_WORK_ROOT = _tmp / "work"
FERRY_VAR_DIR = _tmp / "var"  # ingested WDL operations are kept under it
FILE_UPLOAD_TEMP_DIR = str(_tmp / ".incoming")
STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(_tmp)},
    },
    "files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(_tmp / "files")},
    },
}
# Tasks run inline in the test process; a worker started by a test sets FERRY_Q_SYNC=false.
Q_CLUSTER = {
    "name": "ferry-test",
    "orm": "default",
    "sync": env.bool("FERRY_Q_SYNC", default=True),
    "timeout": 60,
    "retry": 120,
    "workers": 3,
    "poll": 0.1,
    "broker_class": "operations.broker.NotifiedORM",
    # django-q2's default (250 kept, pruned on every save); a benchmark's worker sets the
    # deployment's -1 (config.settings.base: no row per successful task).
    "save_limit": env.int("FERRY_Q_SAVE_LIMIT", default=250),
}
FERRY_POLL_LOOP_S = env.float("FERRY_POLL_LOOP_S", default=0.0)  # inline: one cycle per call
# Tests drive cycles one by one: each polls every active job (tests of the schedule set these).
FERRY_POLL_WATCHED_S = env.float("FERRY_POLL_WATCHED_S", default=0.0)
FERRY_POLL_UNWATCHED_S = env.float("FERRY_POLL_UNWATCHED_S", default=0.0)
FERRY_POLL_EVENTS_RECONCILE_S = env.float("FERRY_POLL_EVENTS_RECONCILE_S", default=0.0)
FERRY_POLL_RECORD_EVERY_S = env.float("FERRY_POLL_RECORD_EVERY_S", default=0.0)
EXECUTORS = {
    "local-docker": {
        **EXECUTORS["local-docker"],  # noqa: F405
        "OPTIONS": {
            **EXECUTORS["local-docker"]["OPTIONS"],  # noqa: F405
            "work_root": str(_tmp / "work" / "docker"),
        },
    },
    "local-miniwdl": {
        **EXECUTORS["local-miniwdl"],  # noqa: F405
        "OPTIONS": {
            **EXECUTORS["local-miniwdl"]["OPTIONS"],  # noqa: F405
            "work_root": str(_tmp / "work" / "miniwdl"),
        },
    },
    # In memory; its runs follow their run spec's "dummy" script (executors/dummy.py).
    "dummy": {"BACKEND": "executors.dummy.DummyExecutor", "OPTIONS": {}},
}
# Rate limits: a per-process cache cleared before every test (tests/conftest.py), and rates
# no ordinary test reaches; a test that wants a limit sets settings.FERRY_THROTTLE_RATES.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
FERRY_THROTTLE_RATES = dict.fromkeys(FERRY_THROTTLE_RATES, "10000/minute")  # noqa: F405
