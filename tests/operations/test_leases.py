"""Leases tied to a live holder (issue 11, item 1): a dead holder's lease is taken over at once
on its host, a live holder's is kept alive by its heartbeat, another host's lapses in seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from operations import leases, runner
from operations.models import Job, Lease
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db(transaction=True)  # the heartbeat thread has its connection


def holder_of(process: subprocess.Popen[bytes]) -> str:
    """The holder id the process would give itself (this host, its pid and start time)."""
    start = leases._start_of(process.pid)
    assert start is not None
    return f"{leases.host_name()}/{process.pid}/{start}/0123456789ab"


def test_a_dead_workers_lease_is_taken_over_at_once_on_its_host() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = holder_of(other)
        assert leases.acquire("finalize:x", holder, for_=timedelta(hours=3))
        assert leases.is_held("finalize:x")
        assert not leases.acquire("finalize:x", leases.new_holder())  # alive: it keeps it
    finally:
        other.kill()
        other.wait()
    assert not leases.is_held("finalize:x")
    assert leases.acquire("finalize:x", leases.new_holder())  # hours before it would expire


def test_a_holder_on_another_host_keeps_its_lease_until_it_expires() -> None:
    elsewhere = "other-host/4242/1/0123456789ab"
    assert leases.acquire("poll-active", elsewhere, for_=timedelta(seconds=30))
    assert leases.is_held("poll-active")
    assert not leases.acquire("poll-active", leases.new_holder())
    Lease.objects.filter(name="poll-active").update(expires_at=timezone.now())
    assert leases.acquire("poll-active", leases.new_holder())


def test_the_heartbeat_renews_a_lease_while_its_holder_works(settings: Any) -> None:
    settings.FERRY_LEASE_TTL_S = 0.6
    with leases.holding("finalize:y") as held:
        assert held is not None
        time.sleep(2.0)  # three TTLs
        assert not held.lost.is_set()
        assert not leases.acquire("finalize:y", "other-host/1/1/0123456789ab")
    assert leases.acquire("finalize:y", "other-host/1/1/0123456789ab")  # released


def test_a_job_left_finalizing_by_a_killed_worker_is_finalized_at_once(
    workspace: Any, users: Any
) -> None:
    """The lease a killed worker held (3 h before) no longer stops the next finalize."""
    job = Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=users["owner"],
        executor="local-docker",
        status=JobStatus.FINALIZING,
        run_spec={},
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = holder_of(other)
    other.kill()
    other.wait()
    Lease.objects.create(
        name=f"finalize:{job.pk}", holder=holder, expires_at=timezone.now() + timedelta(hours=3)
    )
    assert runner.recover()["refinalizing"] == 1  # a worker starting enqueues it (inline here)
    job.refresh_from_db()
    # Its container is gone (never existed): finalizing ran and says so, nothing waits 3 h.
    assert job.status == JobStatus.FAILED
    assert not Lease.objects.filter(name=f"finalize:{job.pk}").exists()


def test_one_heartbeat_thread_renews_every_lease_the_process_holds(settings: Any) -> None:
    """Leases held at once are renewed by one thread (not one started and joined per lease),
    which ends once the process holds none."""
    import threading

    settings.FERRY_LEASE_TTL_S = 0.6
    with leases.holding("finalize:a") as first, leases.holding("finalize:b") as second:
        assert first is not None
        assert second is not None
        time.sleep(2.0)  # three TTLs
        assert not first.lost.is_set()
        assert not second.lost.is_set()
        assert not leases.acquire("finalize:a", "other-host/1/1/0123456789ab")
        assert not leases.acquire("finalize:b", "other-host/1/1/0123456789ab")
        beats = [t for t in threading.enumerate() if t.name == "lease heartbeat"]
        assert len(beats) == 1, beats
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t.name == "lease heartbeat" for t in threading.enumerate()
    ):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "lease heartbeat"]
