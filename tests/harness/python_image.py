"""A small Python image for the tests, built without any registry.

    ensure_python_image()   # "ferry-test/python:latest": ferry/busybox + this host's python3

The image is ``ferry/busybox:latest`` (``/bin/sh`` and the usual tools from a static busybox)
plus Debian's ``/usr/bin/python3`` interpreter, its standard library (without its tests, IDLE,
tkinter, lib2to3, ensurepip) and the shared libraries ``ldd`` names for the interpreter and the
standard library's extension modules. It is built once: its content hash is in a second tag
(``ferry-test/python:<hash>``), so it is rebuilt only when the host's Python changes. Stand-ins
for WebMEV's operations (tests/e2e/webmev_ops/) build ``FROM ferry-test/python:latest``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tests.harness.docker import DockerHarnessError, ensure_busybox_image

PYTHON_IMAGE = "ferry-test/python:latest"
PYTHON = Path("/usr/bin/python3")
_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "__pycache__"}
_DOCKERFILE = """\
FROM {base}
COPY rootfs/ /
ENV PATH=/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
"""


def _stdlib(python: Path) -> Path:
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(found.stdout.strip())


def _libraries(binaries: list[Path]) -> set[Path]:
    """The shared libraries (and the loader) ``ldd`` names for ``binaries``."""
    found: set[Path] = set()
    for binary in binaries:
        run = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in run.stdout.splitlines():
            match = re.search(r"(/\S+) \(0x", line)
            if match:
                found.add(Path(match.group(1)))
    return found


def _files(python: Path) -> dict[str, Path]:
    """Image path -> host file, for everything the image holds besides the base image."""
    real = python.resolve()
    stdlib = _stdlib(python)
    files: dict[str, Path] = {f"usr/bin/{real.name}": real}
    for root, dirs, names in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        for name in sorted(names):
            host = Path(root) / name
            if host.is_file():
                files[str(host.relative_to("/"))] = host
    extensions = [p for p in files.values() if p.suffix == ".so"]
    for library in _libraries([real, *extensions]):
        files[str(library.relative_to("/"))] = library.resolve()
    return files


def _content_hash(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for target in sorted(files):
        st = files[target].stat()
        digest.update(f"{target}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


def ensure_python_image(tag: str = PYTHON_IMAGE) -> str:
    """Build ``tag`` unless the image for this host's Python exists; returns ``tag``."""
    if not PYTHON.is_file():
        raise DockerHarnessError(f"{PYTHON} is missing: install Debian's python3 (apt-get).")
    base = ensure_busybox_image()
    files = _files(PYTHON)
    repository = tag.rsplit(":", 1)[0]
    hashed = f"{repository}:{_content_hash(files)}"
    client: Any = docker.from_env()
    try:
        try:
            image = client.images.get(hashed)
        except docker.errors.ImageNotFound:
            image = None
        if image is None:
            with tempfile.TemporaryDirectory(prefix="ferry-python-image-") as tmp:
                context = Path(tmp)
                rootfs = context / "rootfs"
                for target, host in files.items():
                    dest = rootfs / target
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(host, dest)
                version = PYTHON.resolve().name  # python3.11
                (rootfs / "usr/bin/python3").symlink_to(version)
                (context / "Dockerfile").write_text(_DOCKERFILE.format(base=base))
                try:
                    image, _log = client.images.build(
                        path=str(context),
                        tag=hashed,
                        rm=True,
                        forcerm=True,
                        pull=False,
                        labels={"org.ferry.test": "python"},
                    )
                except docker.errors.BuildError as exc:
                    lines = [str(c.get("stream") or c.get("error") or "") for c in exc.build_log]
                    raise DockerHarnessError(
                        f"building {hashed} failed: {exc.msg}\n" + "".join(lines)[-2000:]
                    ) from None
        image.tag(repository, tag.rsplit(":", 1)[1])
        return tag
    finally:
        client.close()


if __name__ == "__main__":
    try:
        print(ensure_python_image(*sys.argv[1:2]))
    except DockerHarnessError as exc:
        raise SystemExit(str(exc)) from exc
