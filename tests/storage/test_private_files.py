"""Ferry's local data is private: SQLite file 0600, folders 0700, stored files 0640."""
# ruff: noqa: F811  (pytest fixtures imported from tests.executors.test_executor_docker)

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from api import storage
from api.models import File, Workspace
from api.private_paths import ensure_private_dirs
from executors.docker import DockerExecutor
from tests.executors.test_executor_docker import (  # noqa: F401
    alias,
    executor,
    image,
    make_job,
    run,
)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_embedded_default_keeps_its_database_and_folders_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "FERRY_STORAGE_ROOT", "FERRY_WORK_ROOT")
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", FERRY_VAR_DIR=str(var))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=django_settings.BASE_DIR,
        env=env,
        check=True,
        umask=0o022,
        timeout=300,
    )
    assert mode(var / "ferry.sqlite3") == 0o600
    for leftover in ("ferry.sqlite3-wal", "ferry.sqlite3-shm"):
        if (var / leftover).exists():
            assert mode(var / leftover) == 0o600
    for folder in (var, var / "storage", var / "storage" / ".incoming", var / "work"):
        assert mode(folder) == 0o700, folder


def test_start_up_makes_storage_and_work_roots_private(tmp_path: Path, settings: Any) -> None:
    root = tmp_path / "old-storage"
    root.mkdir()
    os.chmod(root, 0o755)  # noqa: S103 (as an earlier version left it)
    settings.FERRY_VAR_DIR = tmp_path / "new-var"
    settings.FERRY_STORAGE_ROOT = root
    settings.FILE_UPLOAD_TEMP_DIR = str(root / ".incoming")
    settings.FERRY_WORK_ROOT = tmp_path / "new-var" / "work"
    ensure_private_dirs()
    for folder in (root, root / ".incoming", tmp_path / "new-var", tmp_path / "new-var" / "work"):
        assert mode(folder) == 0o700, folder


@pytest.mark.django_db
def test_stored_files_are_0640_in_0700_folders(
    workspace: Workspace, make_file: Callable[..., File], storage_root: Path
) -> None:
    stored = Path(storage.local_path(make_file(workspace).storage_uri))
    assert mode(stored) == 0o640
    folder = stored.parent
    while folder != storage_root:
        assert mode(folder) == 0o700, folder
        folder = folder.parent


def test_a_docker_job_reads_a_private_input_file(
    executor: DockerExecutor, make_job: Callable[..., Any], tmp_path: Path
) -> None:
    source = tmp_path / "private" / "input.txt"
    source.parent.mkdir(mode=0o700)
    source.write_text("only for Ferry and its jobs\n")
    os.chmod(source, 0o640)
    job = make_job(
        'cat /inputs/x/input.txt > copy.txt && echo \'{"copy": "copy.txt"}\' > outputs.json',
        mounts=[{"source": str(source), "target": "/inputs/x/input.txt"}],
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_message
    assert collected.files["copy"][0].read_text() == "only for Ferry and its jobs\n"
