"""The raw upload under WSGI (gunicorn's sync worker on config.wsgi): the body is received by a
thread a few chunks ahead of the spool (api.storage.uploads.ReadAhead). Hostile bodies — cut
short, with a wrong checksum, announced over the size limit — get a clear 4xx and leave nothing
in storage or the spool, and the worker serves the next upload. An oversized upload is refused
from its Content-Length, before its body is sent, under WSGI and ASGI alike."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import services
from api.models import File, User, Workspace
from tests.benchmarks.gunicorn_server import HOST, MIB, GunicornServer, gunicorn_server, session

WAIT_S = 30.0
LIMIT = 8 * MIB  # FERRY_MAX_UPLOAD_BYTES of the servers here

SERVED: dict[str, dict[str, Any]] = {
    "wsgi": {},
    "asgi": {"app": "config.asgi:application", "worker_class": "uvicorn_worker.UvicornWorker"},
}


@pytest.fixture
def owner(transactional_db: Any) -> tuple[Workspace, str]:
    user = User.objects.create_user(email="wsgi@example.org", password="pw-wsgi-upload-1")
    workspace = services.workspace_create(user=user, name="Sync uploads")
    _token, key = services.api_token_create(user=user, name="wsgi")
    return workspace, key


@pytest.fixture(params=list(SERVED))
def server(request: pytest.FixtureRequest, tmp_path: Path, owner: Any) -> Iterator[GunicornServer]:
    with gunicorn_server(
        tmp_path / "web",
        workers=1,
        extra_env={"FERRY_MAX_UPLOAD_BYTES": str(LIMIT)},
        **SERVED[str(request.param)],
    ) as started:
        yield started


@pytest.fixture
def wsgi_server(tmp_path: Path, owner: Any) -> Iterator[GunicornServer]:
    with gunicorn_server(
        tmp_path / "web", workers=1, extra_env={"FERRY_MAX_UPLOAD_BYTES": str(LIMIT)}
    ) as started:
        yield started


def headers_only(server: GunicornServer, workspace: Workspace, key: str, length: int) -> bytes:
    return (
        f"PUT /api/files/upload/?workspace={workspace.pk}&name=big.bin HTTP/1.1\r\n"
        f"Host: {HOST}:{server.port}\r\nAuthorization: Token {key}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def answer_of(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the answer read from ``sock`` (until the server closes)."""
    sock.settimeout(WAIT_S)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


def kept(server_dir: Path) -> list[Path]:
    """Files in the server's storage, its spool folder included."""
    return [
        p for p in (server_dir / "storage").rglob("*") if p.is_file() and ".readyz" not in p.parts
    ]


def put(server: GunicornServer, workspace: Workspace, key: str, data: bytes, **headers: str) -> Any:
    with session() as http:
        return http.put(
            f"{server.base_url}/api/files/upload/",
            params={"workspace": str(workspace.pk), "name": "whole.bin"},
            data=data,
            headers={
                "Authorization": f"Token {key}",
                "Content-Type": "application/octet-stream",
                **headers,
            },
            timeout=WAIT_S,
        )


def test_an_oversized_upload_is_refused_before_its_body_is_sent(
    server: GunicornServer, owner: tuple[Workspace, str]
) -> None:
    workspace, key = owner
    with socket.create_connection((HOST, server.port), timeout=WAIT_S) as sock:
        sock.sendall(headers_only(server, workspace, key, 512 * MIB))
        # Not a byte of the body: the limit is judged from Content-Length.
        status, body = answer_of(sock)
    assert status == 413, body
    assert body["code"] == "too_large"
    assert f"limited to {LIMIT} bytes" in body["details"]["Content-Length"][0]
    assert not File.objects.exists()


def test_hostile_bodies_under_wsgi_keep_nothing_and_the_worker_serves_on(
    wsgi_server: GunicornServer, owner: tuple[Workspace, str]
) -> None:
    workspace, key = owner
    server_dir = wsgi_server.log_path.parent
    # Cut short: 3 MiB of an announced 6 MiB, then the client stops sending.
    with socket.create_connection((HOST, wsgi_server.port), timeout=WAIT_S) as sock:
        sock.sendall(headers_only(wsgi_server, workspace, key, 6 * MIB))
        sock.sendall(b"x" * (3 * MIB))
        sock.shutdown(socket.SHUT_WR)
        status, body = answer_of(sock)
    assert (status, body["code"]) == (400, "incomplete_body"), body
    assert "Content-Length" in body["details"]

    data = random.Random(11).randbytes(5 * MIB + 123)
    digest = hashlib.sha256(data).hexdigest()
    wrong = put(wsgi_server, workspace, key, data, **{"X-Checksum-Sha256": "0" * 64})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "checksum_mismatch")
    assert "X-Checksum-Sha256" in wrong.json()["details"]
    assert not File.objects.exists()
    deadline = time.monotonic() + WAIT_S
    while kept(server_dir):
        assert time.monotonic() < deadline, kept(server_dir)
        time.sleep(0.1)

    whole = put(wsgi_server, workspace, key, data, **{"X-Checksum-Sha256": digest})
    assert whole.status_code == 201, whole.text[:500]
    created = whole.json()
    assert (created["size"], created["sha256"]) == (len(data), digest)
    with session() as http:
        download = http.get(
            f"{wsgi_server.base_url}/api/files/{created['id']}/download/",
            headers={"Authorization": f"Token {key}"},
            timeout=WAIT_S,
        )
    assert download.content == data
    assert [p.read_bytes() == data for p in kept(server_dir)] == [True]
