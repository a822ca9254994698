"""Fixtures shared by the benchmarks (run with `make bench`; never part of `make test`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from api import services
from api.models import User


@pytest.fixture(scope="session", autouse=True)
def _remove_settings_tmpdir() -> Iterator[None]:
    """config.settings.test makes an (unused here) ferry-test-* temp dir at import; remove it."""
    yield
    root = Path(settings.FERRY_STORAGE_ROOT)
    if (
        "FERRY_TEST_STORAGE_ROOT" not in os.environ
        and root.parent == Path(tempfile.gettempdir()).resolve()
        and root.name.startswith("ferry-test-")
    ):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bench_dir() -> Iterator[Path]:
    """A scratch folder on the same disk as the server's storage, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bench_user(transactional_db: Any) -> User:
    # Committed (transactional_db), so the gunicorn processes see it.
    return User.objects.create_user(email="bench@example.org", password="bench-password-123")


@pytest.fixture
def api_key(bench_user: User) -> str:
    _token, key = services.api_token_create(user=bench_user, name="benchmark")
    return key
