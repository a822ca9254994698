"""A second Docker engine on its own socket, bridge and directories, for tests that stop and
restart an engine without touching the host's (DESIGN.md section 11)::

    with SecondDockerEngine() as engine:     # needs root (dockerd, ip link)
        engine.base_url                      # "unix:///tmp/ferry-engine-…/docker.sock"
        engine.stop(); engine.start()        # a graceful restart, as systemctl restart does

It gets its own bridge interface (``ferrytestN``, the first name free, on 169.254.X.1/24 with X
unused): never ``--bridge=none``, which deletes the host engine's docker0. Its own empty config
file keeps the host's /etc/docker/daemon.json (hosts, bridge…) out. The bridge and the
directories are removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import docker.errors

from .docker import DockerHarnessError

START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 90  # a graceful stop waits ~10 s for each running container to stop


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _used_link_local_subnets() -> set[int]:
    """The third octets of the 169.254.X.0/24 networks addresses on this host are in."""
    used = set()
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        for word in line.split():
            if word.startswith("169.254."):
                used.add(int(word.split(".")[2]))
    return used


class SecondDockerEngine:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ferry-engine-", dir="/tmp"))  # short socket path
        self.socket = self.dir / "docker.sock"
        self.base_url = f"unix://{self.socket}"
        self.log = self.dir / "dockerd.log"
        self.bridge = ""
        self.process: subprocess.Popen[bytes] | None = None

    # -- set-up ------------------------------------------------------------------------------

    def __enter__(self) -> SecondDockerEngine:
        if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("ip") is None:
            raise DockerHarnessError("a second Docker engine needs root, dockerd and ip")
        try:
            self._add_bridge()
            (self.dir / "daemon.json").write_text("{}\n")
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _add_bridge(self) -> None:
        used = _used_link_local_subnets()
        octets = [n for n in range(213, 250) if n not in used]
        for index in range(20):
            name = f"ferrytest{index}"
            if _ip("link", "add", name, "type", "bridge").returncode != 0:
                continue  # exists: another test's engine
            self.bridge = name
            if not octets:
                raise DockerHarnessError("no free 169.254.X.0/24 network for a test bridge")
            for command in (
                ("addr", "add", f"169.254.{octets[0]}.1/24", "dev", name),
                ("link", "set", name, "up"),
            ):
                done = _ip(*command)
                if done.returncode != 0:
                    raise DockerHarnessError(f"ip {' '.join(command)}: {done.stderr.strip()}")
            return
        raise DockerHarnessError("no free ferrytestN bridge name")

    # -- the engine ----------------------------------------------------------------------------

    def client(self) -> Any:
        return docker.DockerClient(base_url=self.base_url, timeout=30)

    def answers(self) -> bool:
        try:
            client = self.client()
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def start(self) -> None:
        command = [
            "dockerd",
            "--config-file",
            str(self.dir / "daemon.json"),
            "-H",
            self.base_url,
            "--data-root",
            str(self.dir / "data"),
            "--exec-root",
            str(self.dir / "exec"),
            "--pidfile",
            str(self.dir / "docker.pid"),
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip-masq=false",
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        tail = "".join(self.log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise DockerHarnessError(f"the second dockerd did not answer (log {self.log}):\n{tail}")

    def stop(self) -> None:
        """Stop it as a service manager does (SIGTERM: it stops its containers first)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        if self.bridge:
            _ip("link", "delete", self.bridge)
            self.bridge = ""
        self._unmount_leftovers()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        """dockerd bind-mounts its data root onto itself and may leave that (and a container's
        mounts, after a crash) behind: unmount what is below our directory, deepest first."""
        with contextlib.suppress(OSError):
            points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
            for point in sorted(points, key=len, reverse=True):
                if point == str(self.dir) or point.startswith(f"{self.dir}/"):
                    subprocess.run(["umount", "-l", point], capture_output=True, check=False)
