"""Example operations that run on a tiny local base image (``ferry/busybox:latest``).

Each sub-folder holding an ``operation.json`` is one operation (``table-summary``,
``table-filter`` in containers; ``table-preview``, a WDL workflow run by miniwdl);
``ferry_load_examples`` adds them all. The base image is built from
``scratch`` plus Debian's static busybox (``apt-get install busybox-static``), so no registry is
needed.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

import docker
import docker.errors

EXAMPLES_DIR = Path(__file__).resolve().parent
BASE_IMAGE = "ferry/busybox:latest"
BUSYBOX = Path("/bin/busybox")

_BASE_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY passwd group /etc/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /work /usr/bin && chmod 1777 /tmp && ln -s /bin/env /usr/bin/env"]
ENV PATH=/bin
WORKDIR /work
CMD ["/bin/sh"]
"""
_USERS = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


class BaseImageError(RuntimeError):
    """The base image can't be built here."""


def example_folders() -> list[Path]:
    """The example operations' folders, by name."""
    return sorted(p for p in EXAMPLES_DIR.iterdir() if (p / "operation.json").is_file())


def is_static_executable(path: Path) -> bool:
    """True for an ELF executable that needs no dynamic loader (no PT_INTERP header)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit
        (phoff,) = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    for index in range(phnum):
        (p_type,) = struct.unpack_from(order + "I", data, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP: dynamically linked
            return False
    return True


def ensure_base_image(
    client: docker.DockerClient | None = None,
    *,
    busybox: Path = BUSYBOX,
    rebuild: bool = False,
    tag: str = BASE_IMAGE,
) -> str:
    """Make sure ``ferry/busybox:latest`` (or ``tag``) exists, building it from ``scratch`` and
    the static ``busybox`` if needed; return its id. Raises :class:`BaseImageError`."""
    client = client or docker.from_env()
    if not rebuild:
        try:
            return str(client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            pass
    if not busybox.is_file():
        raise BaseImageError(
            f"{busybox} is missing: the example operations' base image is built from Debian's "
            "static busybox. Install it with: apt-get install busybox-static"
        )
    if not is_static_executable(busybox):
        raise BaseImageError(
            f"{busybox} is not a static executable (it is the dynamically linked busybox), so it "
            "can't run in an empty image. Install the static one: apt-get install busybox-static"
        )
    with tempfile.TemporaryDirectory(prefix="ferry-base-") as tmp:
        context = Path(tmp)
        shutil.copy2(busybox, context / "busybox")
        (context / "Dockerfile").write_text(_BASE_DOCKERFILE)
        (context / "passwd").write_text(_USERS)
        (context / "group").write_text(_GROUP)
        try:
            image, _log = client.images.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                labels={"org.ferry.base": "busybox"},
            )
        except docker.errors.BuildError as exc:
            lines = [str(c.get("stream") or c.get("error") or "") for c in exc.build_log]
            tail = "".join(lines).strip().splitlines()[-10:]
            raise BaseImageError(f"building {tag} failed: {exc.msg}\n" + "\n".join(tail)) from None
    return str(image.id)
