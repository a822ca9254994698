"""vagrant/Vagrantfile: Debian's `vagrant` validates it (no VM boots here, no box downloads), and
the settings it makes, read by running the file against a recorder, are the story the README
tells: the official bookworm box, nginx's HTTPS port forwarded to localhost:8443, the project
folder synced, and the one provisioning script run with HTTPS origins and secure cookies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .images import REPO

VAGRANT_DIR = REPO / "vagrant"
RECORDER = Path(__file__).with_name("vagrantfile_calls.rb")


@pytest.fixture(scope="module")
def vagrant() -> str:
    """Debian's vagrant package, installed here when missing (as root)."""
    found = shutil.which("vagrant")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("vagrant is missing: sudo apt-get install --no-install-recommends vagrant")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "vagrant"],
    ):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
    found = shutil.which("vagrant")
    assert found
    return found


def _validate(vagrant: str, folder: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [vagrant, "validate", "--ignore-provider"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "VAGRANT_HOME": str(tmp_path / "vagrant-home"),
            "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotfile"),
            "VAGRANT_CHECKPOINT_DISABLE": "1",
        },
    )


def test_vagrant_validates_the_vagrantfile(vagrant: str, tmp_path: Path) -> None:
    done = _validate(vagrant, VAGRANT_DIR, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout


def test_vagrant_validate_catches_a_broken_setting(vagrant: str, tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting is refused."""
    broken = tmp_path / "vagrant"
    broken.mkdir()
    text = (VAGRANT_DIR / "Vagrantfile").read_text()
    (broken / "Vagrantfile").write_text(text.replace("config.vm.hostname", "config.vm.hostnam"))
    done = _validate(vagrant, broken, tmp_path)
    assert done.returncode != 0
    assert "hostnam" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def vagrant_settings(vagrant: str) -> list[dict[str, Any]]:
    ruby = Path(vagrant).resolve().parent / "ruby"
    done = subprocess.run(
        [str(ruby) if ruby.exists() else "ruby", str(RECORDER), str(VAGRANT_DIR / "Vagrantfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "FERRY_HTTPS_PORT"},
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def _calls(settings: list[dict[str, Any]], *path: str) -> list[dict[str, Any]]:
    return [call for call in settings if call["path"] == list(path)]


def test_vagrantfile_uses_the_official_bookworm_box(vagrant_settings: list[dict[str, Any]]) -> None:
    assert _calls(vagrant_settings, "vm", "box")[0]["args"] == ["debian/bookworm64"]


def test_vagrantfile_forwards_https_to_localhost_8443(
    vagrant_settings: list[dict[str, Any]],
) -> None:
    forwarded = [c["options"] for c in _calls(vagrant_settings, "vm", "network")]
    assert forwarded == [{"guest": 443, "host": 8443, "host_ip": "127.0.0.1"}]


def test_vagrantfile_syncs_the_project_folder(vagrant_settings: list[dict[str, Any]]) -> None:
    synced = {
        tuple(c["args"]): c["options"] for c in _calls(vagrant_settings, "vm", "synced_folder")
    }
    assert synced[("..", "/vagrant-src")]["type"] == "rsync"


def test_vagrantfile_runs_the_provisioning_script_over_https(
    vagrant_settings: list[dict[str, Any]],
) -> None:
    (provision,) = _calls(vagrant_settings, "vm", "provision")
    assert provision["args"] == ["shell"]
    options = provision["options"]
    assert options["inline"] == "bash /vagrant-src/deploy/provision.sh /vagrant-src"
    env = options["env"]
    origins = env["CSRF_TRUSTED_ORIGINS"].split(",")
    assert "https://localhost:8443" in origins
    assert all(origin.startswith("https://") for origin in origins)
    assert "localhost" in env["ALLOWED_HOSTS"].split(",")
    assert env["FERRY_SERVER_NAME"] == "localhost"  # the self-signed certificate's name
    # HTTPS end to end: the cookies stay secure (never the plain-HTTP switches).
    assert env.get("SESSION_COOKIE_SECURE", "true") == "true"
    assert env.get("CSRF_COOKIE_SECURE", "true") == "true"
    assert (REPO / "deploy/provision.sh").is_file()
