"""Named leases across worker clusters, tied to a live holder.

A lease row names its holder as ``host/pid/start/nonce``. It is short (``FERRY_LEASE_TTL_S``)
and renewed by a heartbeat thread while its holder works, so a holder that dies loses it
within seconds wherever it ran; on the holder's own host a dead holder (no process with that
pid and start time) loses it at once, so a restarted worker takes over without waiting.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from .models import Lease


@cache
def _boot_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat): with
    the pid, it names one process even after the pid is reused."""
    return _start_of(pid) or "0"


def _start_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def host_name() -> str:
    return (settings.FERRY_WORKER_HOST or socket.gethostname())[:40].replace("/", "-")


def new_holder() -> str:
    """An id for one piece of work by this process: host, pid, process start, a nonce."""
    pid = os.getpid()
    return f"{host_name()}/{pid}/{_boot_ticks(pid)}/{uuid.uuid4().hex[:12]}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process is gone (or its pid now
    names another process). Holders on other hosts are judged by their lease's expiry."""
    parts = holder.split("/")
    if len(parts) != 4 or parts[0] != host_name() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return parts[2] != _boot_ticks(pid)
    start = _start_of(pid)
    if start is None:
        return True
    return parts[2] != "0" and start != parts[2]


def ttl() -> timedelta:
    return timedelta(seconds=settings.FERRY_LEASE_TTL_S)


def acquire(name: str, holder: str, for_: timedelta | None = None) -> bool:
    """Take the lease ``name`` for ``holder`` (for ``for_``, default the TTL): when free,
    expired, already ours, or held by a dead process on this host. On PostgreSQL the usual
    case (free, expired or ours) is one statement; only a lease held by another holder is
    looked at further (is that holder a dead process on this host?)."""
    now = timezone.now()
    until = now + (ttl() if for_ is None else for_)
    if connection.vendor == "postgresql" and _take_unless_held(name, holder, now, until):
        return True
    with contextlib.suppress(IntegrityError):
        Lease.objects.get_or_create(name=name, defaults={"expires_at": now})
    current = Lease.objects.filter(name=name).values_list("holder", flat=True).first()
    takeover = Q(expires_at__lte=now) | Q(holder=holder) | Q(holder="")
    if current and holder_is_dead(current):
        takeover |= Q(holder=current)
    return Lease.objects.filter(takeover, name=name).update(holder=holder, expires_at=until) == 1


def _take_unless_held(name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Insert the lease, or take it over when it is expired, ours or free, in one statement;
    False when another holder has it (it may still be a dead one)."""
    table = connection.ops.quote_name(Lease._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} ("name", "holder", "expires_at") VALUES (%s, %s, %s) '  # noqa: S608
            'ON CONFLICT ("name") DO UPDATE SET "holder" = EXCLUDED."holder", '
            '"expires_at" = EXCLUDED."expires_at" '
            f'WHERE {table}."expires_at" <= %s OR {table}."holder" = EXCLUDED."holder" '
            f"OR {table}.\"holder\" = '' RETURNING 1",
            [name, holder, until, now],
        )
        return cursor.fetchone() is not None


def renew(name: str, holder: str) -> bool:
    """Extend a lease we hold; False when it was taken over meanwhile."""
    return (
        Lease.objects.filter(name=name, holder=holder).update(expires_at=timezone.now() + ttl())
        == 1
    )


def release(name: str, holder: str) -> None:
    """Give the lease up (one DELETE: a lease has no relations or signals to collect)."""
    table = connection.ops.quote_name(Lease._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM {table} WHERE "name" = %s AND "holder" = %s',  # noqa: S608
            [name, holder],
        )


def is_held(name: str) -> bool:
    """Whether a live holder has the lease: unexpired and not a dead process on this host."""
    row = Lease.objects.filter(name=name).values_list("holder", "expires_at").first()
    if row is None or not row[0] or row[1] <= timezone.now():
        return False
    return not holder_is_dead(row[0])


def free_dead_holders() -> int:
    """Remove every lease held by a dead process on this host (a worker killed before this
    one started); returns how many."""
    freed = 0
    for name, holder in Lease.objects.filter(holder__gt="").values_list("name", "holder"):
        if holder_is_dead(holder):
            freed += Lease.objects.filter(name=name, holder=holder).delete()[0]
    return freed


@dataclass(eq=False)
class Held:
    """A lease this process holds, kept alive by the process's heartbeat until released."""

    name: str
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)
    due: float = 0.0  # time.monotonic() of its next renewal


def _renew_every() -> float:
    return max(0.2, float(settings.FERRY_LEASE_TTL_S) / 3)


class _Heartbeat:
    """One thread per process renews each lease the process holds every third of its time to
    live (a thread started and joined per lease cost each job's submit and finalize two). It
    ends when the process holds none, and is started again by the next lease (also in a
    forked child, which has no thread)."""

    def __init__(self) -> None:
        self._held: set[Held] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, held: Held) -> None:
        held.due = time.monotonic() + _renew_every()
        with self._lock:
            self._held.add(held)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="lease heartbeat", daemon=True
                )
                self._thread.start()
        self._wake.set()  # (looks at its settings again; renews nothing before it is due)

    def remove(self, held: Held) -> None:
        with self._lock:
            self._held.discard(held)

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(max(0.05, min(1.0, _renew_every() / 4)))
                self._wake.clear()
                now = time.monotonic()
                with self._lock:
                    if not self._held:
                        self._thread = None
                        return
                    due = [h for h in self._held if h.due <= now and not h.lost.is_set()]
                for held in due:
                    held.due = now + _renew_every()
                    self._renew(held)
        finally:
            connection.close()  # this thread's own connection

    def _renew(self, held: Held) -> None:
        try:
            if not renew(held.name, held.holder):
                with self._lock:
                    if held in self._held:  # (not released meanwhile)
                        held.lost.set()
        except Exception:  # the database is away for a moment: try on the next beat
            close_old_connections()


_heartbeat = _Heartbeat()


@contextlib.contextmanager
def holding(name: str) -> Iterator[Held | None]:
    """Hold ``name`` while the block runs (heartbeat renewed), or yield None when another live
    holder has it."""
    holder = new_holder()
    if not acquire(name, holder):
        yield None
        return
    held = Held(name, holder)
    _heartbeat.add(held)
    try:
        yield held
    finally:
        _heartbeat.remove(held)
        release(name, holder)
