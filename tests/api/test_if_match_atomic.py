"""If-Match's check and the write it guards are one step: two writers naming the same version,
interleaved deterministically on Postgres, give one 200 and one 412 (no lost update).

The interleaving: the test holds the file's row lock from a connection of its own; both writers
start and are each seen waiting for a lock in pg_stat_activity (a writer that checks If-Match
without the lock gets past its check before it waits: at its UPDATE); then the test lets go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from api.models import File, User

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_S = 30.0


def _connect(*, autocommit: bool) -> psycopg.Connection[Any]:
    """A connection of the test's own to the test database, beside Django's."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=autocommit,
    )


def _waiting_for_a_lock(watcher: psycopg.Connection[Any], holder_pid: int) -> int:
    row = watcher.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> %s",
        [holder_pid],
    ).fetchone()
    return int(row[0]) if row else 0


def _patch_in_thread(
    user: User, url: str, body: dict[str, Any], etag: str, answers: dict[str, Any], name: str
) -> threading.Thread:
    def run() -> None:
        client = APIClient()
        client.force_authenticate(user)
        try:
            answers[name] = client.patch(url, body, format="json", HTTP_IF_MATCH=etag)
        except Exception as exc:  # reported by the test
            answers[name] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_two_writers_with_the_same_if_match_one_wins_one_gets_412(
    users: dict[str, User], file: File, client_for: Callable[[str], APIClient]
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are Postgres'")
    owner = users["owner"]
    url = f"/api/files/{file.pk}/"
    etag = client_for("owner").get(url)["ETag"]
    answers: dict[str, Any] = {}
    threads: list[threading.Thread] = []
    with (
        _connect(autocommit=False) as holder,
        _connect(autocommit=True) as watcher,
    ):
        holder.execute("SELECT 1 FROM api_file WHERE id = %s FOR UPDATE", [file.pk])
        holder_pid = holder.info.backend_pid
        try:
            for name in ("first", "second"):
                threads.append(
                    _patch_in_thread(owner, url, {"name": f"{name}.tsv"}, etag, answers, name)
                )
            deadline = time.monotonic() + WAIT_S
            while _waiting_for_a_lock(watcher, holder_pid) < 2:
                assert time.monotonic() < deadline, f"writers not both waiting: {answers}"
                assert all(t.is_alive() for t in threads), f"a writer did not wait: {answers}"
                time.sleep(0.02)
        finally:
            holder.rollback()
            for thread in threads:
                thread.join(timeout=WAIT_S)
    statuses = sorted(
        answer.status_code if not isinstance(answer, Exception) else repr(answer)
        for answer in answers.values()
    )
    assert statuses == [200, 412], {k: getattr(v, "content", v) for k, v in answers.items()}
    winner = next(k for k, v in answers.items() if v.status_code == 200)
    loser = next(k for k, v in answers.items() if v.status_code == 412)
    assert answers[loser].json()["code"] == "precondition_failed"
    file.refresh_from_db()
    assert file.name == f"{winner}.tsv"
    # What the winner answered is the version now stored.
    assert client_for("owner").get(url).json() == answers[winner].json()
