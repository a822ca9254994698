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
Q_CLUSTER = {"name": "ferry-test", "orm": "default", "sync": True, "timeout": 60, "retry": 120}
