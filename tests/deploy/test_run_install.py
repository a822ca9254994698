"""`make run` installs what running needs and nothing of the test toolchain: its pip step,
resolved in a fresh venv (pip --dry-run --report: nothing is installed), brings the
runtime dependencies of pyproject.toml and no dev package; its Debian step asks for Docker,
busybox-static and git, not PostgreSQL or chromium; it says where Ferry runs and how to move it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .images import DEV_ONLY, REPO

RUN_STAMP = ".venv/.installed-run"


def _make_dry(*targets: str) -> list[str]:
    # Under `make test-deploy` the parent make's MAKELEVEL/MAKEFLAGS would make this one print
    # "Entering/Leaving directory" lines around the commands.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *targets],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_names() -> set[str]:
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_canonical(re.split(r"[\[=<>!~ ;]", dep, maxsplit=1)[0]) for dep in runtime}


def _run_pip_install_args() -> list[str]:
    """The arguments after `pip install` in the recipe that `make run` depends on."""
    lines = [
        line
        for line in _make_dry(RUN_STAMP)
        if " pip install " in line and "--upgrade pip" not in line
    ]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    return words[words.index("install") + 1 :]


def test_make_run_depends_on_the_runtime_install_only() -> None:
    lines = _make_dry("run")
    assert any(line.endswith(f"touch {RUN_STAMP}") for line in lines)
    assert not any(".[dev]" in line for line in lines)
    assert not any(line.strip() == "touch .venv/.installed" for line in lines)


def test_make_run_installs_no_dev_package(tmp_path: Path) -> None:
    args = _run_pip_install_args()
    assert args[-2:] == ["-e", "."], args  # the project itself, no extras
    # pip shows what it fetches.
    assert "--quiet" not in args
    assert "-q" not in args
    # A fresh venv (pip from ensurepip): nothing installed, so the report lists all it would bring.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            *args,
            "--dry-run",
            "--quiet",
            "--report",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = {
        _canonical(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]
    }
    assert _runtime_names() <= names, _runtime_names() - names
    assert not names & {_canonical(name) for name in DEV_ONLY}
    # Nor what the dev packages pull in: playwright's greenlet and pyee, moto's werkzeug/flask,
    # hypothesis' sortedcontainers, pytest's pluggy.
    assert not names & {"greenlet", "pyee", "werkzeug", "flask", "sortedcontainers", "pluggy"}


def _system_packages(purpose: str) -> set[str]:
    done = subprocess.run(
        ["bash", str(REPO / "deploy/system-deps.sh"), "--list", purpose],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_system_deps_for_running_ask_for_no_postgresql_nor_chromium() -> None:
    assert _system_packages("run") == {"docker.io", "busybox-static", "git"}
    assert {"postgresql", "chromium"} <= _system_packages("test")
    lines = _make_dry("run")
    assert "bash deploy/system-deps.sh run" in lines
    assert not any("system-deps.sh test" in line for line in lines)


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "0.0.0.0:9000"])
def test_make_run_says_where_it_serves_and_how_to_move(bind: str) -> None:
    lines = _make_dry("run", f"BIND={bind}")
    shown = "\n".join(line for line in lines if line.startswith("echo"))
    assert f"http://{bind}/" in shown
    assert "make run BIND=0.0.0.0:9000" in shown
    assert lines[-1].endswith(f"ferry_serve --bind {bind}")


def test_the_image_refuses_the_dev_extra() -> None:
    """deploy/Dockerfile's requirement list: the runtime ones, and no way to add the dev extra."""
    script = REPO / "deploy/requirements-from-pyproject.py"
    listed = subprocess.run(
        [sys.executable, str(script), str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    names = {_canonical(re.split(r"[\[=<>!~ ;]", dep, maxsplit=1)[0]) for dep in listed}
    assert names == _runtime_names()
    refused = subprocess.run(
        [sys.executable, str(script), str(REPO / "pyproject.toml"), "dev"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0
    assert "no runtime extra 'dev'" in refused.stderr
