"""Worker clusters (``manage.py qcluster``) as subprocesses on the test Postgres, each in its
own process group, killed with SIGKILL as a whole (as ``kill -9`` of a machine's worker would)
or stopped with SIGTERM; and waiting on conditions with a timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def worker_env(storage_root: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker on the test database and storage root. Lease and
    reconciler timings stay at their defaults unless ``extra`` says otherwise: recovery must
    not depend on short test-only timeouts."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FERRY_TEST_STORAGE_ROOT": str(storage_root),
        "FERRY_Q_SYNC": "false",
        "FERRY_POLL_LOOP_S": "20",
        "FERRY_POLL_INTERVAL_S": "0.3",
        **extra,
    }


class Cluster:
    """One qcluster process group; ``start()`` again after ``kill()`` starts a fresh one."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is running"
        with self.log.open("ab") as out:
            out.write(f"\n===== {self.name} starting =====\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as kill -9 of the group hits
            )
        self.started_at = time.monotonic()

    def _group(self) -> list[psutil.Process]:
        assert self.process is not None
        pgid = self.process.pid
        members = []
        for proc in psutil.process_iter(["pid"]):
            # A process may end between the listing and the look (os: ProcessLookupError).
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) == pgid:
                    members.append(proc)
        return members

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until every member is gone."""
        if self.process is None:
            return
        members = self._group()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        psutil.wait_procs(members, timeout=15)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it lingers."""
        if not self.alive:
            self.kill()  # stray children of an earlier group, if any
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.kill()


@contextlib.contextmanager
def clusters(*members: Cluster) -> Iterator[tuple[Cluster, ...]]:
    """Start the clusters; stop them (and print their logs on a failure) whatever happens."""
    try:
        for member in members:
            member.start()
        yield members
    except BaseException:
        for log in {m.log for m in members}:
            if log.exists():
                print(log.read_text(errors="replace")[-30000:])
        raise
    finally:
        for member in members:
            member.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``predicate()``; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
