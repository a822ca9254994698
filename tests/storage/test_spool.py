"""The upload spool: each process spools into a folder named after it, and the sweeper removes
what processes that are gone left there — judged only for owners on this host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from api.storage.spool import owner_alive, owner_tag, spool_sweep
from api.storage.uploads import SpooledUpload

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# A process that spools 2 MiB of an upload and then waits (as a web worker mid-body does).
_SPOOLER = """
import sys, time, django
django.setup()
from api.storage.uploads import SpooledUpload
upload = SpooledUpload("big.bin", None)
upload.append(b"x" * (2 * 1024 * 1024))
upload._spool.flush()
print(upload.temporary_file_path(), flush=True)
time.sleep(300)
"""


@pytest.fixture
def spooler(storage_root: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], Path]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "FERRY_TEST_STORAGE_ROOT": str(storage_root),
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", _SPOOLER],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        path = Path(proc.stdout.readline().strip())
        assert path.is_file(), f"the spooler did not spool (exit {proc.poll()})"
        return proc, path

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def test_spool_file_lives_in_a_folder_named_after_its_process(storage_root: Path) -> None:
    upload = SpooledUpload("a.tsv", None)
    try:
        folder = Path(upload.temporary_file_path()).parent
        assert folder.parent == storage_root / ".incoming"
        assert folder.name == owner_tag()
        assert folder.name.split("-")[-2] == str(os.getpid())
        assert owner_alive(folder.name) is True
    finally:
        upload.close()


def test_sweep_removes_the_spool_of_a_killed_process_and_keeps_a_live_ones(
    spooler: Any, storage_root: Path
) -> None:
    killed, killed_file = spooler()
    _live, live_file = spooler()
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed_file.is_file()  # a kill leaves it behind: nothing else removes it

    swept = spool_sweep()

    assert not killed_file.parent.exists(), "the killed process's spool was kept"
    assert (swept.removed_files, swept.removed_bytes) == (1, 2 * MIB)
    assert live_file.is_file(), "a live process's spool file was removed"
    own = SpooledUpload("mine.bin", None)  # the sweeper's own folder stays too
    try:
        spool_sweep()
        assert Path(own.temporary_file_path()).is_file()
    finally:
        own.close()


def test_sweep_judges_other_hosts_only_by_age(storage_root: Path) -> None:
    incoming = storage_root / ".incoming"
    other_host = incoming / "other-host.example-0123abcd-42-4242"
    other_host.mkdir()
    (other_host / "tmp1.upload").write_bytes(b"partial")
    loose = incoming / "tmpold.upload"  # a name no owner can be read from
    loose.write_bytes(b"old")
    host, boot = owner_tag().rsplit("-", 3)[:2]
    other_boot = "eeeeeeee" if boot == "ffffffff" else "ffffffff"
    rebooted = incoming / f"{host}-{other_boot}-1-1"  # this host, before it booted
    rebooted.mkdir()
    (rebooted / "tmp2.upload").write_bytes(b"x")
    before_boot = psutil.boot_time() - 60
    for path in (rebooted / "tmp2.upload", rebooted):
        os.utime(path, (before_boot, before_boot))
    # This host but another boot or pid namespace (a container sharing the host name), written
    # since this boot: maybe a live process it can't see.
    neighbour = incoming / f"{host}-{other_boot}-2-2"
    neighbour.mkdir()
    (neighbour / "tmp3.upload").write_bytes(b"x")

    spool_sweep(orphan_age_s=3600)
    assert (other_host / "tmp1.upload").is_file()
    assert loose.is_file()
    assert not rebooted.exists()  # its owner died with the previous boot
    assert (neighbour / "tmp3.upload").is_file()

    old = time.time() - 7200
    for path in (other_host / "tmp1.upload", other_host, loose, neighbour / "tmp3.upload"):
        os.utime(path, (old, old))
    os.utime(neighbour, (old, old))
    swept = spool_sweep(orphan_age_s=3600)
    assert not other_host.exists()
    assert not loose.exists()
    assert not neighbour.exists()
    assert swept.removed_files == 3


def test_a_starting_worker_sweeps_the_spool(
    transactional_db: Any, spooler: Any, storage_root: Path, tmp_path: Path
) -> None:
    from django_q.models import Schedule

    from tests.e2e.test_worker_restart import kill_tree, start_worker

    # Only the start-up sweep may remove it here, not the scheduled one.
    Schedule.objects.filter(func="api.storage.spool.spool_sweep_task").delete()
    killed, killed_file = spooler()
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    worker = start_worker(storage_root, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        while killed_file.parent.exists():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not sweep the spool at start"
            time.sleep(0.1)
    finally:
        kill_tree(worker)


# A process copying a local object (a result stored into local storage), fed through a FIFO so
# that it is mid-write when it is killed.
_COPIER = """
import sys, django
django.setup()
from api.storage.buckets import streamed_copy
streamed_copy(None, sys.argv[1], None, sys.argv[2])
"""


def test_a_local_write_killed_midway_leaves_its_part_in_the_spool(storage_root: Path) -> None:
    source = storage_root.parent / "source.fifo"
    os.mkfifo(source)
    destination = storage_root / "files" / "ws" / "result.bin"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "FERRY_TEST_STORAGE_ROOT": str(storage_root),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _COPIER, str(source), str(destination)], cwd=ROOT, env=env
    )
    try:
        with open(source, "wb") as feed:
            feed.write(b"x" * (9 * MIB))  # the first 8 MiB chunk is written, then it waits
            feed.flush()
            deadline = time.monotonic() + 60
            parts: list[Path] = []
            while not parts and time.monotonic() < deadline and proc.poll() is None:
                parts = [p for p in storage_root.rglob(".incoming-*") if p.stat().st_size]
                time.sleep(0.05)
            assert parts, f"no part written (exit {proc.poll()})"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    assert [p.parent.parent for p in parts] == [storage_root / ".incoming"]
    assert not list(destination.parent.glob("*")), "something was left next to the object"
    spool_sweep()
    assert not list(storage_root.rglob(".incoming-*")), "the killed writer's part stayed"
