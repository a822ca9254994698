"""Web process killed (issue 11): a gunicorn worker — or the whole gunicorn — SIGKILLed during
raw and multipart uploads leaves nothing partial visible, its spool is swept when a web process
starts again, and a retry with the same Idempotency-Key creates nothing twice (also when the
kill came after the create was committed but before the client read the answer)."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from api import services
from api.models import File, User, Workspace
from tests.benchmarks.gunicorn_server import GunicornServer, gunicorn_server, session

MIB = 1024 * 1024
BODY_SIZE = 48 * MIB
SENT_BEFORE_KILL = 12 * MIB
BOUND_S = 60.0  # generous: a worker boots in ~2 s here, far more on a loaded machine


def wait_until(condition: Callable[[], Any], what: str, limit: float = BOUND_S) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit:.0f} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def account(transactional_db: Any) -> tuple[User, Workspace, str]:
    # Committed (transactional_db), so the gunicorn processes see them.
    user = User.objects.create_user(email="web-killed@example.org", password="pw-web-killed-12")
    workspace = services.workspace_create(user=user, name="Killed uploads")
    _token, key = services.api_token_create(user=user, name="resilience")
    return user, workspace, key


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "web"


def body_bytes(seed: int, size: int) -> bytes:
    block = uuid.UUID(int=seed).bytes * (MIB // 16)
    return (block * (size // MIB + 1))[:size]


def raw_upload_head(server: GunicornServer, workspace: Workspace, token: str, idem: str) -> bytes:
    return (
        f"PUT /api/files/upload/?workspace={workspace.pk}&name=raw.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nConnection: close\r\n"
        f"Authorization: Token {token}\r\nIdempotency-Key: {idem}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {BODY_SIZE}\r\n\r\n"
    ).encode()


def multipart_upload(
    server: GunicornServer, workspace: Workspace, token: str, idem: str, data: bytes
) -> tuple[bytes, bytes]:
    """(request head, body) of a multipart upload of ``data``."""
    boundary = "ferry-resilience-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="workspace"\r\n\r\n'
            f"{workspace.pk}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="multi.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/files/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n"
        f"Authorization: Token {token}\r\nIdempotency-Key: {idem}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


@contextlib.contextmanager
def connection_to(server: GunicornServer) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND_S)
    try:
        yield sock
    finally:
        sock.close()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    chunks = []
    while chunk := sock.recv(MIB):
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def spool_of(storage: Path, pid: int) -> Path | None:
    """The spool folder of gunicorn worker ``pid`` (named host-boot-pid-start), if any."""
    for folder in (storage / ".incoming").glob(f"*-{pid}-*"):
        if folder.name.split("-")[-2] == str(pid):
            return folder
    return None


def spooled_bytes(folder: Path | None) -> int:
    if folder is None:
        return 0
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file())


def the_worker(server: GunicornServer) -> psutil.Process:
    workers = wait_until(lambda: server.workers(), "a gunicorn worker runs")
    assert len(workers) == 1
    return workers[0]


def kill_mid_body(
    server: GunicornServer, storage: Path, head: bytes, body: bytes, *, whole_server: bool
) -> Path:
    """Send ``head`` and part of ``body``; once the worker has spooled some of it, SIGKILL it
    (or the master and it); the dead worker's spool folder."""
    worker = the_worker(server)
    with connection_to(server) as sock:
        sock.sendall(head + body[:SENT_BEFORE_KILL])
        wait_until(
            lambda: spooled_bytes(spool_of(storage, worker.pid)) >= 4 * MIB,
            "the worker spools the body",
        )
        folder = spool_of(storage, worker.pid)
        assert folder is not None
        if whole_server:
            server.master.send_signal(signal.SIGKILL)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=BOUND_S)
    return folder


def stored_objects(storage: Path) -> list[Path]:
    return [p for p in (storage / "files").rglob("*") if p.is_file()]


def test_web_process_killed_during_uploads(
    account: tuple[User, Workspace, str], workdir: Path
) -> None:
    _user, workspace, token = account
    storage = workdir / "storage"
    raw_key, multi_key = str(uuid.uuid4()), str(uuid.uuid4())
    raw_data = body_bytes(1, BODY_SIZE)
    multi_data = body_bytes(2, 20 * MIB)

    # 1. A worker killed mid raw body: gunicorn starts another, which sweeps the dead one's
    #    spool as it starts; nothing of the upload is visible.
    with gunicorn_server(workdir, workers=1) as server:
        folder = kill_mid_body(
            server,
            storage,
            raw_upload_head(server, workspace, token, raw_key),
            raw_data,
            whole_server=False,
        )
        killed_at = time.monotonic()
        wait_until(lambda: not folder.exists(), "the new worker sweeps the killed one's spool")
        print(f"worker killed mid raw body: spool swept {time.monotonic() - killed_at:.1f} s later")
        assert File.objects.filter(workspace=workspace).count() == 0
        assert stored_objects(storage) == []

        # 2. The same upload sent again with the same key is created; the worker is then
        #    killed after the create was committed, before the client read the answer.
        worker = the_worker(server)
        with connection_to(server) as sock:
            sock.sendall(raw_upload_head(server, workspace, token, raw_key) + raw_data)
            created = wait_until(
                lambda: File.objects.filter(workspace=workspace, name="raw.bin").first(),
                "the retried raw upload is committed",
            )
            worker.send_signal(signal.SIGKILL)
        with connection_to(server) as sock:  # 3. the client retries once more
            sock.sendall(raw_upload_head(server, workspace, token, raw_key) + raw_data)
            status, headers, answer = read_response(sock)
        assert status == 201, answer
        assert headers.get("idempotent-replayed") == "true"
        assert str(created.pk).encode() in answer
        assert File.objects.filter(workspace=workspace, name="raw.bin").count() == 1

    # 4. The whole gunicorn (master and worker) killed mid multipart body: the next gunicorn
    #    sweeps the spool as it starts.
    with gunicorn_server(workdir, workers=1) as server:
        head, body = multipart_upload(server, workspace, token, multi_key, multi_data)
        folder = kill_mid_body(server, storage, head, body, whole_server=True)
    assert folder.exists()  # nothing removed it while no web process ran
    restarted_at = time.monotonic()
    with gunicorn_server(workdir, workers=1) as server:
        wait_until(lambda: not folder.exists(), "a starting gunicorn sweeps the dead spool")
        print(f"gunicorn killed: spool swept {time.monotonic() - restarted_at:.1f} s after restart")
        assert not File.objects.filter(workspace=workspace, name="multi.bin").exists()

        # 5. The multipart upload retried twice with its key: stored once, answered alike.
        http = session()
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": multi_key}
        answers = [
            http.post(
                server.base_url + "/api/files/",
                data={"workspace": str(workspace.pk)},
                files={"file": ("multi.bin", multi_data, "application/octet-stream")},
                headers=headers,
                timeout=BOUND_S,
            )
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [201, 201], answers[0].text
        assert answers[0].json() == answers[1].json()
        assert answers[1].headers.get("Idempotent-Replayed") == "true"
    assert File.objects.filter(workspace=workspace).count() == 2
    assert len(stored_objects(storage)) == 2
    leftovers = [p for p in (storage / ".incoming").rglob("*") if p.is_file()]
    assert leftovers == [], "spool files left behind"
