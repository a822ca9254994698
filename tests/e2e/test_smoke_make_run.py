"""Boot `make run`'s configuration (SQLite, local storage in a var folder, worker beside the web
server) as real processes, and use it over HTTP the way a newcomer would."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.harness.docker import ensure_docker

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin@ferry.local", "Smoke-test-pass-123")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def var_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    var = tmp_path_factory.mktemp("var")
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        FERRY_VAR_DIR=str(var),
        FERRY_ADMIN_PASSWORD=ADMIN[1],
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [*manage, "ferry_ensure_admin"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Created admin user admin@ferry.local" in out.stdout
    ensure_docker()
    loaded = subprocess.run(
        [*manage, "ferry_load_examples"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    return env


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and everything it started, even when a test failed half-way."""
    if process.poll() is not None:
        return
    children = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start-up"
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still booting
            pass
        time.sleep(0.2)
    raise AssertionError("server did not answer /healthz within 60 s")


@pytest.fixture(scope="module")
def served(var_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ferry_serve", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=var_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, process
    finally:
        stop_tree(process)


def test_newcomer_flow_over_http(
    served: tuple[str, subprocess.Popen[bytes]], var_env: dict[str, str]
) -> None:
    base, process = served
    # Database and storage at once; the worker's first heartbeat may take a moment.
    deadline = time.monotonic() + 60
    answer = requests.get(f"{base}/readyz", timeout=5)
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = requests.get(f"{base}/readyz", timeout=5)
    assert answer.status_code == 200, answer.text
    ready = answer.json()["checks"]
    assert {"database", "storage", "worker"} <= set(ready)
    assert set(ready.values()) == {"ok"}, ready
    # Worker beside the web server.
    names = [" ".join(c.cmdline()) for c in psutil.Process(process.pid).children(recursive=True)]
    assert any("uvicorn config.asgi:application" in n for n in names), names
    assert any("qcluster" in n for n in names), names

    # Sign in through the browsable API's log-in page (session + CSRF), like a browser.
    browser = requests.Session()
    browser.get(f"{base}/api-auth/login/", timeout=5)
    login = browser.post(
        f"{base}/api-auth/login/",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "next": "/api/",
        },
        headers={"Referer": f"{base}/api-auth/login/"},
        timeout=5,
    )
    assert login.status_code == 200
    assert login.url.endswith("/api/")
    assert browser.get(f"{base}/api/auth/me/", timeout=5).json()["email"] == ADMIN[0]
    assert "swagger" in browser.get(f"{base}/api/docs/", timeout=5).text.lower()

    # A script signs in with JWT, creates a workspace, uploads and downloads a file.
    tokens = requests.post(
        f"{base}/api/auth/token/", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=5
    ).json()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {tokens['access']}"
    ws = api.post(f"{base}/api/workspaces/", json={"name": "Smoke"}, timeout=5).json()
    data = b"sample\tvalue\n" + b"".join(b"S%d\t%d.5\n" % (i, i) for i in range(2000))
    up = api.put(
        f"{base}/api/files/upload/",
        params={"workspace": ws["id"], "name": "values.tsv"},
        data=data,
        headers={"X-Checksum-Sha256": hashlib.sha256(data).hexdigest()},
        timeout=10,
    )
    assert up.status_code == 201, up.text
    assert up.json()["status"] == "ready"
    down = api.get(up.json()["download_url"], timeout=10)
    assert down.content == data
    assert down.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'

    # The README's demo: run an example operation on the uploaded file, download its result.
    catalog = {
        op["name"]: op for op in api.get(f"{base}/api/operations/", timeout=5).json()["results"]
    }
    assert {"table-summary", "table-filter"} <= set(catalog)
    job = api.post(
        f"{base}/api/jobs/",
        json={
            "operation": catalog["table-filter"]["id"],
            "workspace": ws["id"],
            "inputs": {"table": up.json()["id"], "column": "value", "min_value": 1990},
        },
        timeout=10,
    ).json()
    deadline = time.monotonic() + 90
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = api.get(f"{base}/api/jobs/{job['id']}/", timeout=5).json()
    assert job["status"] == "succeeded", (job["error_message"], job)
    assert job["outputs"]["kept"] == 10
    # The browser's session hears the job's whole life on the event stream (from the start).
    heard = []
    with browser.get(
        f"{base}/api/events/?job={job['id']}",
        headers={"Last-Event-ID": "0"},
        stream=True,
        timeout=(5, 30),
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                heard.append(json.loads(line.removeprefix("data: "))["payload"].get("to"))
            if "succeeded" in heard:
                break
    assert heard[0] == "queued"
    assert heard[-1] == "succeeded"
    result = api.get(f"{base}/api/files/{job['outputs']['filtered']}/download/", timeout=10)
    lines = result.text.splitlines()
    assert lines[0] == "sample\tvalue"
    assert lines[-1] == "S1999\t1999.5"
    assert len(lines) == 11

    # The WDL example runs on miniwdl, the embedded default for WDL operations.
    assert catalog["table-preview"]["mode"] == "wdl"
    job = api.post(
        f"{base}/api/jobs/",
        json={
            "operation": catalog["table-preview"]["id"],
            "workspace": ws["id"],
            "inputs": {"table": up.json()["id"], "lines": 3},
        },
        timeout=10,
    ).json()
    assert job["executor"] == "local-miniwdl", job
    deadline = time.monotonic() + 120
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = api.get(f"{base}/api/jobs/{job['id']}/", timeout=5).json()
    assert job["status"] == "succeeded", (job["error_message"], job)
    assert job["outputs"]["total_lines"] == len(data.decode().splitlines())
    preview = api.get(f"{base}/api/files/{job['outputs']['preview']}/download/", timeout=10)
    assert preview.text.splitlines() == data.decode().splitlines()[:3]


def short_body_upload(base: str, token: str, workspace: str, kind: str) -> bytes:
    """Announce 1 MiB, send a bit over 1 KiB (raw body or a multipart file part), hang up."""
    host, port = base.removeprefix("http://").split(":")
    if kind == "raw":
        head = f"PUT /api/files/upload/?workspace={workspace}&name=cut.bin HTTP/1.1\r\n"
        content_type = "application/octet-stream"
        sent = b"x" * 1024
    else:
        head = "POST /api/files/ HTTP/1.1\r\n"
        content_type = "multipart/form-data; boundary=XyZ"
        sent = (
            f'--XyZ\r\nContent-Disposition: form-data; name="workspace"\r\n\r\n{workspace}\r\n'
            '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + b"x" * 1024
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            (
                f"{head}Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {1024 * 1024}\r\n\r\n"
            ).encode()
            + sent
        )
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def assert_nothing_kept(base: str, token: str, var: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = [
            p for p in (var / "storage").rglob("*") if p.is_file() and ".readyz" not in p.parts
        ]
        files = requests.get(
            f"{base}/api/files/?name=cut", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        # The smoke flow's upload and its two jobs' results (table-filter, table-preview).
        if not files["results"] and len(leftovers) <= 3:
            return
        time.sleep(0.2)
    raise AssertionError(f"partial upload kept: {leftovers} {files}")


@pytest.mark.parametrize("kind", ["raw", "multipart"])
def test_client_hanging_up_mid_upload_keeps_nothing(
    kind: str, served: tuple[str, subprocess.Popen[bytes]], var_env: dict[str, str]
) -> None:
    base, _ = served
    token = requests.post(
        f"{base}/api/auth/token/", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=5
    ).json()["access"]
    ws = requests.post(
        f"{base}/api/workspaces/",
        json={"name": f"Cut {kind}"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    answer = short_body_upload(base, token, ws["id"], kind)
    # make run serves ASGI (uvicorn): the client's half-close is a disconnect, and Django's ASGI
    # handler drops a request whose body never completed before any view runs, so there is no
    # answer to read; under WSGI (gunicorn below) the view answers 400 incomplete_body.
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 400") and b"incomplete_body" in answer), (
        answer[:500]
    )
    assert_nothing_kept(base, token, Path(var_env["FERRY_VAR_DIR"]))


def test_client_hanging_up_mid_upload_under_gunicorn(var_env: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=var_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(base, process)
        token = requests.post(
            f"{base}/api/auth/token/", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=5
        ).json()["access"]
        ws = requests.post(
            f"{base}/api/workspaces/",
            json={"name": "Cut2"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
        for kind in ("raw", "multipart"):
            answer = short_body_upload(base, token, ws["id"], kind)
            # gunicorn may answer 400 or just close the connection; either way nothing is kept.
            assert answer == b"" or b" 400 " in answer.split(b"\r\n")[0], answer[:500]
        assert_nothing_kept(base, token, Path(var_env["FERRY_VAR_DIR"]))
    finally:
        stop_tree(process)


def test_ctrl_c_stops_server_and_worker(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    _, process = served
    children = psutil.Process(process.pid).children(recursive=True)
    assert children
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [" ".join(p.cmdline()) for p in alive]


def test_killed_launcher_takes_its_children_along(var_env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ferry_serve", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=var_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        children = psutil.Process(process.pid).children()
        assert len(children) == 2
        process.kill()
        process.wait()
        # The worker stops gracefully: a running poll loop ends its cycle or its time
        # (FERRY_POLL_LOOP_S, 25 s by default) before the cluster exits.
        _gone, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
    finally:
        stop_tree(process)
