"""Static checks of the deployment files in deploy/ and vagrant/.

No database needed. Checks whose tool (systemd-analyze, nginx, vagrant) is
missing on the machine are skipped.
"""

import os
import py_compile
import re
import secrets
import shutil
import subprocess
import sys
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


def production_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),  # as provision.sh makes it
        FERRY_CREDENTIAL_KEYS="q6mQ0mY4cSg7K4xv5Xh8tqQ3Zb9m5R1wFJ4o2yq0c1E=",
        DATABASE_URL="postgres://ferry:pw@127.0.0.1:1/ferry",  # never connected to
        **extra,
    )
    return env


def test_production_settings_pass_check_deploy():
    """What provision.sh runs after migrating: no warning left (HTTPS behind nginx)."""
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/0"])
def test_worker_broker_follows_redis_url(redis_url):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "q = settings.Q_CLUSTER; print(q.get('orm'), q.get('redis'))"
    )
    result = run(
        [sys.executable, "-c", code], cwd=ROOT, env=production_env(FERRY_Q_REDIS_URL=redis_url)
    )
    assert result.returncode == 0, result.stderr
    expected = f"None {redis_url}" if redis_url else "default None"
    assert result.stdout.strip() == expected
