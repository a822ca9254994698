"""A provisioned Ferry host for the deployment tests: a Debian bookworm container (debootstrap,
no registry) with systemd as init, given the host's Docker engine for jobs, on which
deploy/provision.sh runs unmodified, as an admin would run it on a server.

    with provisioned_host() as host:   # builds, boots, provisions; always cleaned up
        host.base                      # https://127.0.0.1:<port>  (nginx, self-signed)
        host.provision()               # run the script again; returns its output
        host.sh("systemctl is-active ferry-web")

Traps handled here:
- The Docker executor bind-mounts job folders by their path on the engine's host, so Ferry's
  var dir is a host folder mounted at the same absolute path (FERRY_VAR_DIR, a provisioning
  setting). It is not under /tmp: the services run with PrivateTmp.
- The engine's socket is handed in; its group id need not match the container's docker group
  (provision.sh adds ferry to whichever group owns the socket).
- pip in the container reaches PyPI through this machine's TLS proxy: its CA bundle is handed in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "ferry-test/bookworm:base"
# Kept between runs like the base image (a cache; ~40 s to build): systemd on the bare base.
SYSTEMD_IMAGE = "ferry-test/bookworm:systemd"
SYSTEMD_DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      systemd systemd-sysv dbus >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGRTMIN+3
"""
# The flags DESIGN.md section 11 found to work here (--privileged is refused).
SYSTEMD_FLAGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:ro",
]
# Jobs' folders: a host path, outside /tmp and /home (the units' PrivateTmp, ProtectHome).
VAR_PARENT = Path(os.environ.get("FERRY_DEPLOY_TEST_VAR", "/var/lib/ferry-deploy-test"))
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# What provision.sh gets as its source tree: a snapshot, so edits to the checkout while the tests
# run don't show up as changes in the second run.
SNAPSHOT_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", "*.pyc", ".*_cache", "*.egg-info", ".vagrant"
)
ADMIN_EMAIL = "admin@ferry.local"
ADMIN_PASSWORD = "Deploy-test-pass-123"
PROVISION_TIMEOUT_S = 1200


def progress(message: str) -> None:
    """A stage line on the terminal (make test-deploy runs pytest with -s)."""
    print(f"[deploy {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {result.returncode}\n{result.stderr[-3000:]}")
    return result


def ensure_images() -> None:
    """The debootstrap base (tests/deploy/debian-base.sh) and systemd on top of it."""
    run("bash", str(ROOT / "tests" / "deploy" / "debian-base.sh"), BASE_IMAGE, timeout=600)
    if run("docker", "image", "inspect", SYSTEMD_IMAGE, check=False).returncode == 0:
        return
    progress(f"building {SYSTEMD_IMAGE} (systemd on the debootstrap base, once) ...")
    build = subprocess.run(
        ["docker", "build", "-q", "-t", SYSTEMD_IMAGE, "-"],
        input=SYSTEMD_DOCKERFILE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]


@dataclass
class Host:
    name: str
    var_dir: Path
    log: Path
    https_port: int = 0
    http_port: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def certificate(self) -> str:
        """The host's self-signed certificate (made by provision.sh): clients verify with it."""
        return str(self.var_dir.parent / "ferry.crt")

    def fetch_certificate(self) -> None:
        run("docker", "cp", f"{self.name}:/etc/ferry/tls/ferry.crt", self.certificate)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> str:
        return run(
            "docker", "exec", self.name, "bash", "-c", script, timeout=timeout, check=check
        ).stdout

    def provision(self) -> str:
        """deploy/provision.sh from the mounted source tree, unmodified; settings come from the
        environment, as an admin would give them."""
        env = {
            "FERRY_VAR_DIR": str(self.var_dir),
            "FERRY_SERVER_NAME": "localhost",
            "FERRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PIP_CERT": "/etc/ferry-test-ca.crt",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_DEFAULT_TIMEOUT": "180",
        }
        flags = [f"--env={key}={value}" for key, value in env.items()]
        cmd = ["docker", "exec", *flags, self.name, "bash", "/src/deploy/provision.sh", "/src"]
        started = time.monotonic()
        with self.log.open("a") as out:
            out.write(f"\n#### {' '.join(cmd)}\n")
            out.flush()
            result = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=PROVISION_TIMEOUT_S
            )
        text = self.log.read_text()
        output = text[text.rindex("\n#### ") :]
        if result.returncode != 0:
            raise AssertionError(f"provision.sh failed ({result.returncode}):\n{output[-6000:]}")
        runs = sum(stage.startswith("provision") for stage in self.timings)
        self.timings[f"provision {runs + 1}"] = time.monotonic() - started
        return output

    def port(self, inside: int) -> int:
        answer = self.sh_host("docker", "port", self.name, f"{inside}/tcp")
        return int(answer.splitlines()[0].rsplit(":", 1)[1])

    @staticmethod
    def sh_host(*cmd: str) -> str:
        return run(*cmd).stdout


def _boot(host: Host) -> None:
    run(
        "docker",
        "run",
        "-d",
        "--name",
        host.name,
        "--hostname",
        "ferry-deploy-test",
        *SYSTEMD_FLAGS,
        "-v",
        "/var/run/docker.sock:/run/docker.sock",
        "-v",
        f"{host.var_dir}:{host.var_dir}",
        "-v",
        f"{host.var_dir.parent / 'src'}:/src:ro",
        "-v",
        f"{HOST_CA}:/etc/ferry-test-ca.crt:ro",
        "-p",
        "127.0.0.1::443",
        "-p",
        "127.0.0.1::80",
        SYSTEMD_IMAGE,
        "/sbin/init",
    )
    deadline = time.monotonic() + 120
    while True:
        state = run(
            "docker", "exec", host.name, "systemctl", "is-system-running", check=False
        ).stdout.strip()
        if state in ("running", "degraded"):
            break
        assert time.monotonic() < deadline, f"systemd did not boot: {state}"
        time.sleep(0.5)
    host.https_port = host.port(443)
    host.http_port = host.port(80)


def _remove(host: Host) -> None:
    run("docker", "rm", "-f", "-v", host.name, check=False, timeout=120)
    shutil.rmtree(host.var_dir.parent, ignore_errors=True)
    with contextlib.suppress(OSError):
        VAR_PARENT.rmdir()  # only when no other run's folder is left


def _reused(spec: str) -> Host:
    """FERRY_DEPLOY_REUSE=<container>:<var dir>: a host kept by FERRY_DEPLOY_KEEP=1, for
    working on the tests (nothing is provisioned or removed)."""
    name, var_dir = spec.split(":", 1)
    host = Host(name=name, var_dir=Path(var_dir), log=Path(f"/tmp/{name}.log"))
    host.https_port, host.http_port = host.port(443), host.port(80)
    host.fetch_certificate()
    return host


@contextlib.contextmanager
def provisioned_host() -> Iterator[Host]:
    if reuse := os.environ.get("FERRY_DEPLOY_REUSE"):
        yield _reused(reuse)
        return
    unique = uuid.uuid4().hex[:10]
    started = time.monotonic()
    ensure_images()
    var_dir = VAR_PARENT / unique / "var"
    var_dir.parent.mkdir(parents=True, mode=0o755)
    VAR_PARENT.chmod(0o755)
    shutil.copytree(ROOT, var_dir.parent / "src", ignore=SNAPSHOT_IGNORE, symlinks=True)
    log = Path(os.environ.get("FERRY_DEPLOY_LOG", f"/tmp/ferry-deploy-{unique}.log"))
    host = Host(name=f"ferry-deploy-{unique}", var_dir=var_dir, log=log)
    host.timings["images"] = time.monotonic() - started
    try:
        progress(f"booting {host.name} (systemd as init) ...")
        mark = time.monotonic()
        _boot(host)
        host.timings["boot"] = time.monotonic() - mark
        progress(f"provisioning (log: {log}) ...")
        host.provision()
        host.fetch_certificate()
        progress(f"provisioned in {host.timings['provision 1']:.0f} s; {host.base}")
        yield host
        log.unlink()
    finally:
        if os.environ.get("FERRY_DEPLOY_KEEP") == "1":  # debugging: docker rm -f it yourself
            progress(f"kept {host.name} and {var_dir} (FERRY_DEPLOY_KEEP=1)")
        else:
            progress("removing the container and the var dir")
            _remove(host)
        if log.exists():
            progress(f"provisioning log kept: {log}")
        progress(
            "timings: "
            + ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in host.timings.items())
        )
