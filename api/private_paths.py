"""Ferry's local data is private to the account it runs as.

The database file (SQLite in the embedded default) is 0600; the var dir, the storage root, its
upload spool and every folder Django creates under it are 0700. Stored files are 0640: besides
Ferry only its own group may read them, which Docker job containers join to read their inputs
(bind mounts don't need the folders above a file to be searchable).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from django.conf import settings

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: Path, *, tighten: bool) -> None:
    """Create ``path`` and any missing parents 0700; with ``tighten``, also take group/other
    access away from ``path`` itself if it exists already and belongs to this account."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is subject to the umask
    if tighten and not missing:
        st = os.stat(path)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)


def ensure_private_dirs() -> None:
    """At start-up: the var dir if it is new (an existing one keeps its mode: in production it
    lets nginx reach STATIC_ROOT); the storage root, the upload spool and the work root are
    made private whether new or not."""
    with contextlib.suppress(OSError):
        make_private_dirs(Path(settings.FERRY_VAR_DIR), tighten=False)
    for folder in (
        settings.FERRY_STORAGE_ROOT,
        settings.FILE_UPLOAD_TEMP_DIR,
        settings.FERRY_WORK_ROOT,  # job work dirs: containers reach them by bind mounts
    ):
        with contextlib.suppress(OSError):  # /readyz reports a storage root it can't use
            make_private_dirs(Path(folder), tighten=True)


def protect_sqlite_file(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: a SQLite database file (and SQLite's -wal/-shm, which copy its mode)
    readable and writable by this account only."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    for path in (name, f"{name}-wal", f"{name}-shm", f"{name}-journal"):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != PRIVATE_FILE_MODE:
                os.chmod(path, PRIVATE_FILE_MODE)
