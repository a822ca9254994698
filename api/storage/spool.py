"""The upload spool ($FERRY_STORAGE_ROOT/.incoming): every process spools into its own folder,
named after its owner, so that what a killed process left behind can be found and removed.

An owner folder is named ``<host>-<boot>-<pid>-<start>``: the host name; 8 hex characters naming
the kernel boot and the process-id namespace (a digest of the boot id and the pid namespace);
the process id and the process's start time (clock ticks since boot, from ``/proc/<pid>/stat``).
A pid alone is reused; with its start time, boot and namespace it names one process.

The storage root may be shared by several machines (NFS), so the sweeper only judges owners it
can see: a folder of this host, boot and namespace whose process is gone is removed at once; one
of this host from another boot (or namespace) once nothing in it was written since this boot.
Anything else (other hosts' folders, files of older Ferry versions, names it can't read) is
removed once nothing in it has been written for ``FERRY_SPOOL_ORPHAN_AGE_S``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

_OWNER = re.compile(r"^(?P<host>.+)-(?P<boot>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)$")
_owner_of_pid: dict[int, str] = {}


def _host() -> str:
    # A host name may hold characters that don't belong in a folder name.
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _boot() -> str:
    """8 hex characters naming this kernel boot and this process-id namespace (containers on
    one host may share a host name but not their pids)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    boot_id = _read("/proc/sys/kernel/random/boot_id").strip()
    return hashlib.sha256(f"{boot_id}:{namespace}".encode()).hexdigest()[:8]


def _boot_time() -> float:
    """When this host booted (seconds since the epoch), 0 if unknown."""
    match = re.search(r"^btime (\d+)$", _read("/proc/stat"), re.MULTILINE)
    return float(match[1]) if match else 0.0


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is no such
    process (or no /proc to ask)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 2 (the command) is in parentheses and may hold spaces; start time is field 22.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_tag() -> str:
    """This process's owner folder name (computed once per process; a forked child gets its
    own)."""
    pid = os.getpid()
    tag = _owner_of_pid.get(pid)
    if tag is None:
        tag = f"{_host()}-{_boot()}-{pid}-{process_start(pid) or 0}"
        _owner_of_pid.clear()
        _owner_of_pid[pid] = tag
    return tag


def spool_dir() -> str:
    """This process's spool folder (created private if missing)."""
    path = os.path.join(settings.FILE_UPLOAD_TEMP_DIR, owner_tag())
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def owner_alive(tag: str) -> bool | None:
    """Whether the process that owns spool folder ``tag`` still runs: True/False for owners of
    this host, boot and pid namespace; None when this process can't tell."""
    match = _OWNER.match(tag)
    if match is None or match["host"] != _host() or match["boot"] != _boot():
        return None
    if not os.path.exists("/proc/self/stat"):
        return None  # no /proc to ask (not Linux)
    pid, start = int(match["pid"]), int(match["start"])
    running_since = process_start(pid)
    return running_since is not None and (start == 0 or running_since == start)


def _this_host_other_boot(tag: str) -> bool:
    match = _OWNER.match(tag)
    return match is not None and match["host"] == _host() and match["boot"] != _boot()


@dataclass
class SpoolSweep:
    removed_folders: int = 0
    removed_files: int = 0
    removed_bytes: int = 0


def _newest_write(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _measure(path: Path) -> tuple[int, int]:
    if not path.is_dir() or path.is_symlink():
        return 1, path.lstat().st_size
    count = size = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(root, name)).st_size
                count += 1
    return count, size


def _is_leftover(entry: Path, mine: str, now: float, orphan_age_s: float) -> bool:
    """Whether a spool entry is for the sweep: not this process's; a folder of a process that
    is gone; or anything else not written for ``orphan_age_s`` seconds (or not since this host
    booted, when an earlier boot of it wrote it)."""
    if entry.name == mine:
        return False
    alive = owner_alive(entry.name) if entry.is_dir() else None
    if alive is not None:
        return not alive
    newest = _newest_write(entry)
    written_before_boot = _this_host_other_boot(entry.name) and newest < _boot_time()
    return written_before_boot or now - newest >= orphan_age_s


def _remove(entry: Path) -> tuple[int, int]:
    """Remove a spool entry (folder or file); the number of files and bytes it held."""
    files, size = _measure(entry)
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()
    return files, size


def spool_sweep(*, orphan_age_s: float | None = None) -> SpoolSweep:
    """Remove the spool folders of processes that are gone, and whatever else in the spool has
    not been written for ``orphan_age_s`` (default FERRY_SPOOL_ORPHAN_AGE_S) seconds."""
    if orphan_age_s is None:
        orphan_age_s = settings.FERRY_SPOOL_ORPHAN_AGE_S
    root = Path(settings.FILE_UPLOAD_TEMP_DIR)
    swept = SpoolSweep()
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return swept
    mine = owner_tag()
    now = time.time()
    for entry in entries:
        try:
            if not _is_leftover(entry, mine, now, orphan_age_s):
                continue
            files, size = _remove(entry)
        except FileNotFoundError:
            continue  # removed meanwhile (another sweeper)
        except OSError as exc:
            logger.warning("Could not remove %s from the upload spool: %s", entry, exc)
            continue
        swept.removed_folders += 1
        swept.removed_files += files
        swept.removed_bytes += size
    if swept.removed_folders:
        logger.info(
            "Upload spool: removed %d files (%d bytes) left by processes that are gone",
            swept.removed_files,
            swept.removed_bytes,
        )
    return swept


def spool_sweep_task() -> str:
    """The scheduled sweep (django-q): a one-line summary for the task's result."""
    swept = spool_sweep()
    return (
        f"removed {swept.removed_files} spool files ({swept.removed_bytes} bytes) "
        f"in {swept.removed_folders} entries"
    )


def spool_sweep_at_start(*args: object, **kwargs: object) -> None:
    """A web or worker process started: sweep, never failing the start."""
    try:
        spool_sweep()
    except Exception:
        logger.exception("The upload spool could not be swept")
