"""The raw upload under ASGI (gunicorn with a uvicorn worker on config.asgi, as deployed): the
body streams to the view, so a refused upload is answered before its body is sent, a client
that hangs up mid-body leaves nothing behind and the worker serves on, and a whole body is
stored with the checksum it was sent with."""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import services
from api.models import File, Role, User, Workspace
from tests.benchmarks.gunicorn_server import HOST, MIB, GunicornServer, gunicorn_server, session

WAIT_S = 30.0


@pytest.fixture
def people(transactional_db: Any) -> tuple[Workspace, str, str]:
    """A workspace, its owner's API key and a viewer's (who may not upload)."""
    owner = User.objects.create_user(email="streams@example.org", password="pw-streams-1")
    viewer = User.objects.create_user(email="looks@example.org", password="pw-streams-2")
    workspace = services.workspace_create(user=owner, name="Streamed")
    services.member_add(workspace=workspace, email=viewer.email, role=Role.VIEWER)
    _t, owner_key = services.api_token_create(user=owner, name="streams")
    _t, viewer_key = services.api_token_create(user=viewer, name="looks")
    return workspace, owner_key, viewer_key


@pytest.fixture
def asgi_server(tmp_path: Path, people: Any) -> Iterator[GunicornServer]:
    with gunicorn_server(
        tmp_path / "web",
        workers=1,
        app="config.asgi:application",
        worker_class="uvicorn_worker.UvicornWorker",
    ) as server:
        yield server


def _headers_only(server: GunicornServer, workspace: Workspace, key: str, length: int) -> bytes:
    return (
        f"PUT /api/files/upload/?workspace={workspace.pk}&name=big.bin HTTP/1.1\r\n"
        f"Host: {HOST}:{server.port}\r\nAuthorization: Token {key}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status_line(sock: socket.socket) -> str:
    sock.settimeout(WAIT_S)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def test_a_refused_upload_is_answered_before_its_body_is_sent(
    asgi_server: GunicornServer, people: tuple[Workspace, str, str]
) -> None:
    workspace, _owner_key, viewer_key = people
    with socket.create_connection((HOST, asgi_server.port), timeout=WAIT_S) as sock:
        sock.sendall(_headers_only(asgi_server, workspace, viewer_key, 512 * MIB))
        # Not a byte of the body: Django's own ASGI handler would wait for all 512 MiB.
        assert _status_line(sock).split()[1] == "403"
    assert not File.objects.exists()


def test_a_client_hanging_up_mid_body_leaves_nothing_and_the_worker_serves_on(
    asgi_server: GunicornServer, people: tuple[Workspace, str, str]
) -> None:
    workspace, owner_key, _viewer_key = people
    (worker,) = asgi_server.workers()
    threads_before = worker.num_threads()
    for _ in range(3):
        with socket.create_connection((HOST, asgi_server.port), timeout=WAIT_S) as sock:
            sock.sendall(_headers_only(asgi_server, workspace, owner_key, 64 * MIB))
            sock.sendall(b"x" * (3 * MIB))
    # The view's thread ends with the request (it is not left waiting for the rest).
    deadline = time.monotonic() + WAIT_S
    while worker.num_threads() > threads_before + 1:
        assert time.monotonic() < deadline, (threads_before, worker.num_threads())
        time.sleep(0.1)
    assert not File.objects.exists()

    data = random.Random(7).randbytes(5 * MIB + 123)
    with session() as http:
        response = http.put(
            f"{asgi_server.base_url}/api/files/upload/",
            params={"workspace": str(workspace.pk), "name": "whole.bin"},
            data=data,
            headers={
                "Authorization": f"Token {owner_key}",
                "Content-Type": "application/octet-stream",
                "X-Checksum-Sha256": hashlib.sha256(data).hexdigest(),
            },
            timeout=WAIT_S,
        )
        assert response.status_code == 201, response.text[:500]
        created = response.json()
        assert (created["size"], created["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        download = http.get(
            f"{asgi_server.base_url}/api/files/{created['id']}/download/",
            headers={"Authorization": f"Token {owner_key}"},
            timeout=WAIT_S,
        )
        assert download.content == data
        short = http.put(
            f"{asgi_server.base_url}/api/files/upload/",
            params={"workspace": str(workspace.pk), "name": "lies.bin"},
            data=data,
            headers={
                "Authorization": f"Token {owner_key}",
                "Content-Type": "application/octet-stream",
                "X-Checksum-Sha256": "0" * 64,
            },
            timeout=WAIT_S,
        )
        assert short.status_code == 400, short.text[:500]
    assert list(File.objects.values_list("name", flat=True)) == ["whole.bin"]
