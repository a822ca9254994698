"""Static checks of the deployment files in deploy/ and vagrant/.

No database needed. Checks whose tool (systemd-analyze, nginx, vagrant) is
missing on the machine are skipped.
"""

import os
import py_compile
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = [DEPLOY / "systemd" / "ferry-web.service", DEPLOY / "systemd" / "ferry-worker.service"]


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def require(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.mark.parametrize("script", ["provision.sh", "ferry-manage"])
def test_shell_scripts_parse(script):
    path = DEPLOY / script
    assert os.access(path, os.X_OK), f"{path} is not executable"
    result = run(["bash", "-n", str(path)])
    assert result.returncode == 0, result.stderr


def test_provision_is_strict():
    assert "set -euo pipefail" in (DEPLOY / "provision.sh").read_text()


def test_gunicorn_conf_compiles(tmp_path):
    py_compile.compile(
        str(DEPLOY / "gunicorn.conf.py"), cfile=str(tmp_path / "gunicorn.pyc"), doraise=True
    )


def test_systemd_units_verify():
    tool = require("systemd-analyze")
    result = run([tool, "verify", *map(str, UNITS)])
    problems = []
    for line in (result.stdout + result.stderr).splitlines():
        if not any(unit.name in line for unit in UNITS):
            continue  # noise about unrelated units on this machine
        # The venv only exists on a provisioned host.
        missing = re.search(r"Command (/opt/ferry/venv/\S+) is not executable", line)
        if missing and not Path(missing.group(1)).exists():
            continue
        problems.append(line)
    assert not problems, "\n".join(problems)


def render_site(tmp_path):
    """deploy/nginx/ferry.conf filled in as provision.sh does, with a throwaway certificate."""
    cert, key = tmp_path / "ferry.crt", tmp_path / "ferry.key"
    made = run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ]
    )
    assert made.returncode == 0, made.stderr
    text = (DEPLOY / "nginx" / "ferry.conf").read_text()
    for name, value in {
        "SERVER_NAME": "localhost",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
        "STATIC_ROOT": str(tmp_path / "static"),
    }.items():
        text = text.replace(f"@{name}@", value)
    assert "@" not in text
    text = text.replace(
        "/etc/nginx/snippets/ferry-proxy.conf", str(DEPLOY / "nginx" / "ferry-proxy.conf")
    )
    site = tmp_path / "ferry.conf"
    site.write_text(text)
    return site


def test_nginx_conf(tmp_path):
    tool = require("nginx")
    require("openssl")
    site = render_site(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n"
        "    access_log off;\n"
        f"    client_body_temp_path {tmp_path}/body;\n"
        f"    proxy_temp_path {tmp_path}/proxy;\n"
        f"    include {site};\n"
        "}\n"
    )
    result = run(
        [tool, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)]
    )
    assert result.returncode == 0, result.stderr


def test_vagrantfile_validates(tmp_path):
    tool = require("vagrant")
    env = dict(
        os.environ, VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"), VAGRANT_CHECKPOINT_DISABLE="1"
    )
    # No provider (VirtualBox, libvirt) is installed here: check the Vagrantfile alone.
    result = run([tool, "validate", "--ignore-provider"], cwd=ROOT / "vagrant", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
