"""A Docker engine and a busybox image for the tests, without any registry.

    ensure_docker()            # the engine answers, or is installed (docker.io) and started
    ensure_busybox_image()     # "ferry/busybox:latest": FROM scratch + a static /bin/busybox
    ensure_swarm()             # a one-node swarm on loopback (miniwdl runs its tasks as services)

Both raise DockerHarnessError with what to do when they can't; ``python -m tests.harness.docker``
does both from a shell.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

BUSYBOX = Path("/bin/busybox")
START_TIMEOUT_S = 60


class DockerHarnessError(RuntimeError):
    """The tests can't get a Docker engine or image; the message says what to do."""


def _engine_answers() -> bool:
    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(*packages: str) -> None:
    if not _is_root():
        raise DockerHarnessError(
            f"Missing Debian packages for the Docker tests: {' '.join(packages)}. "
            f"Install them: sudo apt-get install -y {' '.join(packages)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *packages],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DockerHarnessError(
            f"Could not install {' '.join(packages)} with apt-get ({exc})."
        ) from exc


def ensure_docker() -> None:
    """Make sure a Docker engine answers: install docker.io and start dockerd if needed."""
    if _engine_answers():
        return
    if shutil.which("dockerd") is None:
        _apt_install("docker.io")
        if _engine_answers():  # the package may have started the service
            return
    if not _is_root():
        raise DockerHarnessError(
            "No Docker engine answers (DOCKER_HOST or /var/run/docker.sock) and only root can "
            "start one. Start dockerd (sudo systemctl start docker, or sudo dockerd &) and make "
            "sure this user may use it (the docker group)."
        )
    log = Path(tempfile.mkstemp(prefix="ferry-dockerd-", suffix=".log")[1])
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the test run, like a service
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _engine_answers():
            return
        if process.poll() is not None:
            break
        time.sleep(0.5)
    tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
    if process.poll() is None:
        process.terminate()
    raise DockerHarnessError(
        f"dockerd did not answer within {START_TIMEOUT_S} s (log: {log}). Last lines:\n{tail}"
    )


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(64)
            if header[:4] != b"\x7fELF":
                return False
            is64, little = header[4] == 2, header[5] == 1
            end = "<" if little else ">"
            if is64:
                phoff, phentsize, phnum = (
                    struct.unpack(end + "Q", header[32:40])[0],
                    *struct.unpack(end + "HH", header[54:58]),
                )
            else:
                phoff, phentsize, phnum = (
                    struct.unpack(end + "I", header[28:32])[0],
                    *struct.unpack(end + "HH", header[42:46]),
                )
            for index in range(phnum):
                fh.seek(phoff + index * phentsize)
                if struct.unpack(end + "I", fh.read(4))[0] == 3:  # PT_INTERP
                    return False
            return True
    except (OSError, struct.error):
        return False


def ensure_busybox_image(tag: str = "ferry/busybox:latest") -> str:
    """Build ``tag`` (FROM scratch + a static busybox) unless it exists; returns the tag."""
    client: Any = docker.from_env()
    try:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        if not _is_static_elf(BUSYBOX):
            _apt_install("busybox-static")
            if not _is_static_elf(BUSYBOX):
                raise DockerHarnessError(
                    f"{BUSYBOX} is not a static busybox even after installing busybox-static."
                )
        from operations.examples import BaseImageError, ensure_base_image

        try:
            ensure_base_image(client, tag=tag)
        except BaseImageError as exc:
            raise DockerHarnessError(str(exc)) from exc
        return tag
    finally:
        client.close()


def ensure_swarm() -> None:
    """miniwdl runs WDL tasks as Docker swarm services: join a one-node swarm on loopback."""
    client: Any = docker.from_env()
    try:
        state = client.info().get("Swarm", {}).get("LocalNodeState")
        if state == "active":
            return
        try:
            client.swarm.init(listen_addr="127.0.0.1", advertise_addr="127.0.0.1")
        except docker.errors.APIError as exc:
            if "already part of a swarm" not in str(exc):
                raise DockerHarnessError(f"could not start a one-node Docker swarm: {exc}") from exc
    finally:
        client.close()


if __name__ == "__main__":
    try:
        ensure_docker()
        print(ensure_busybox_image(*sys.argv[1:2]))
        ensure_swarm()
    except DockerHarnessError as exc:
        raise SystemExit(str(exc)) from exc
