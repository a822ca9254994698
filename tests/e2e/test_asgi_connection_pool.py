"""The ASGI app as deployed (gunicorn's uvicorn workers, FERRY_DB_POOL as deploy/gunicorn.conf.py
sets it) keeps its PostgreSQL connections in a pool between requests: under ASGI a connection
can't outlive its request's thread, and without the pool every request started a new backend
(~12 ms of the database's CPU, more than a small request itself)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from api import services
from api.models import User
from tests.benchmarks.gunicorn_server import gunicorn_server, session


def _server_backends(started_before: float) -> list[tuple[int, float]]:
    """(pid, backend start) of the other idle backends of this database that started before
    ``started_before`` (epoch seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, extract(epoch FROM backend_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND state = 'idle'"
        )
        rows = [(int(pid), float(start)) for pid, start in cursor.fetchall()]
    return [row for row in rows if row[1] < started_before]


@pytest.mark.django_db(transaction=True)
def test_the_asgi_workers_reuse_their_database_connections(tmp_path: Path) -> None:
    user = User.objects.create_user(email="pool@example.org", password="pool-password-123")
    _token, key = services.api_token_create(user=user, name="pool")
    env: dict[str, Any] = {"FERRY_DB_POOL": "true"}
    with (
        gunicorn_server(
            tmp_path,
            workers=1,
            extra_env=env,
            app="config.asgi:application",
            worker_class="uvicorn_worker.UvicornWorker",
        ) as server,
        session() as http,
    ):
        for _ in range(3):
            response = http.get(
                server.base_url + "/api/jobs/", headers={"Authorization": f"Token {key}"}
            )
            assert response.status_code == 200, response.text[:300]
        before_last = time.time()
        time.sleep(0.05)  # (backend_start and time.time() share the machine's clock)
        for _ in range(3):
            response = http.get(
                server.base_url + "/api/jobs/", headers={"Authorization": f"Token {key}"}
            )
            assert response.status_code == 200, response.text[:300]
        # The connections the last requests used were open before them, and stay open.
        assert _server_backends(before_last), "every request opened (and closed) a backend"
