"""deploy/Dockerfile: built on the local debootstrap bookworm base (no registry), it runs as the
unprivileged `ferry` user, holds the runtime dependencies only, keeps nothing of its build stage,
and serves the app with gunicorn's uvicorn workers."""

from __future__ import annotations

import json
import re
import secrets
import time
import tomllib
from collections.abc import Iterator

import pytest
import requests

from .images import DEV_ONLY, FERRY_IMAGE, REPO, build_ferry_image, debian_base, docker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_image() -> str:
    return debian_base()


@pytest.fixture(scope="module")
def image(base_image: str) -> str:
    seconds = build_ferry_image(base_image)
    size = json.loads(docker("image", "inspect", FERRY_IMAGE).stdout)[0]["Size"]
    print(f"\n{FERRY_IMAGE}: built in {seconds:.0f} s, {size / 1e6:.0f} MB")
    return FERRY_IMAGE


def _run(image: str, *command: str) -> str:
    done = docker("run", "--rm", image, *command)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_runs_as_the_unprivileged_ferry_user(image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "ferry"
    assert _run(image, "id", "-u").strip() == "10001"
    assert _run(image, "id", "-un").strip() == "ferry"


def test_image_is_built_on_the_base_image_argument(image: str, base_image: str) -> None:
    """BASE_IMAGE decides the runtime stage: the base's layers are the image's first ones."""
    base_layers = json.loads(docker("image", "inspect", base_image).stdout)[0]["RootFS"]["Layers"]
    layers = json.loads(docker("image", "inspect", image).stdout)[0]["RootFS"]["Layers"]
    assert layers[: len(base_layers)] == base_layers


def test_image_holds_runtime_dependencies_only(image: str) -> None:
    listed = json.loads(_run(image, "pip", "list", "--format", "json"))
    installed = {_canonical(row["name"]) for row in listed}
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {_canonical(re.split(r"[\[=<>!~ ;]", dep, maxsplit=1)[0]) for dep in runtime}
    assert wanted <= installed, wanted - installed
    assert not installed & {_canonical(name) for name in DEV_ONLY}
    assert "greenlet" not in installed  # playwright's


def test_build_stage_leaves_nothing_behind(image: str) -> None:
    """No compiler, no build inputs, no CA or index given at build time in the final image."""
    assert _run(image, "sh", "-c", "command -v gcc cc || true").strip() == ""
    assert _run(image, "sh", "-c", "ls /src 2>/dev/null || echo absent").strip() == "absent"
    assert _run(
        image, "sh", "-c", "ls /opt/ferry/app/tests 2>/dev/null || echo absent"
    ).strip() == ("absent")
    # compose's deploy/.env (secrets) never enters the build context.
    assert "**/.env" in (REPO / ".dockerignore").read_text().splitlines()
    history = docker("history", "--no-trunc", image).stdout
    assert "BEGIN CERTIFICATE" not in history
    assert "EXTRA_CA_CERTS" not in history
    # Static files are collected into the image and readable by any user (nginx).
    assert _run(image, "sh", "-c", "stat -c %a /opt/ferry/static/admin/css/base.css").strip() == (
        "644"
    )


@pytest.fixture
def web_container(image: str) -> Iterator[str]:
    name = f"ferry-image-test-{secrets.token_hex(4)}"
    started = docker(
        "run",
        "-d",
        "--name",
        name,
        "-e",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        "-e",
        "FERRY_CREDENTIAL_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LWNvbGxlY3RzdGF0aWM=",
        "-e",
        "ALLOWED_HOSTS=*",
        "-e",
        "GUNICORN_WORKERS=1",
        image,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        docker("rm", "-f", "-v", name)


def test_image_serves_healthz_with_gunicorn_uvicorn_workers(web_container: str) -> None:
    """The default command: gunicorn (deploy/gunicorn.conf.py) on 0.0.0.0:8000, as `ferry`."""
    address = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", web_container
    ).stdout.strip()
    assert address
    deadline = time.monotonic() + 150
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = requests.get(f"http://{address}:8000/healthz", timeout=15)
            break
        except (requests.ConnectionError, requests.Timeout):  # still booting (a loaded machine)
            assert docker("inspect", "-f", "{{.State.Running}}", web_container).stdout.strip() == (
                "true"
            ), docker("logs", web_container).stderr[-3000:]
            time.sleep(0.5)
    assert answer is not None, docker("logs", web_container).stderr[-3000:]
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    # gunicorn's arbiter and its worker, every process as uid 10001 (none as root).
    rows = [line.split() for line in docker("top", web_container).stdout.splitlines()[1:]]
    assert sum("gunicorn" in " ".join(row) for row in rows) >= 2, rows
    assert {row[0] for row in rows if row} == {"10001"}, rows
    # A uvicorn worker (ASGI) answered, not gunicorn's sync one.
    assert "Application startup complete" in docker("logs", web_container).stderr
