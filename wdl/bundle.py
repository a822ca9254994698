"""A WDL bundle: the workflow's main file and every file beside it, held in memory.

A bundle comes from a folder, a zip archive or a single file. Paths inside it are POSIX paths
relative to the bundle root. Hidden files and folders (names starting with ``.``, like ``.git``)
and macOS ``__MACOSX`` folders are left out; so are symbolic links leading out of a folder.
Size limits guard against zip bombs and stray data folders.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wdl.errors import WorkflowInvalid, bundle_error

DEFAULT_MAIN = "main.wdl"
MAX_FILES = 1000
MAX_TOTAL_BYTES = 50 * 1024 * 1024
VIRTUAL_ROOT = "/wdl-bundle"


@dataclass(frozen=True)
class Bundle:
    """Files by their path relative to the root; ``main`` is one of them.

    ``origin`` is the absolute path that stands for the root in miniwdl's source positions: the
    real folder for a bundle read from disk, a virtual path otherwise.
    """

    files: dict[str, bytes]
    main: str = DEFAULT_MAIN
    origin: str = VIRTUAL_ROOT
    label: str = field(default="", compare=False)

    def absolute(self, relative: str) -> str:
        return posixpath.join(self.origin, relative)

    def relative(self, absolute: str) -> str:
        """The bundle path of an absolute path from miniwdl (unchanged when outside)."""
        if absolute.startswith(self.origin.rstrip("/") + "/"):
            return posixpath.relpath(absolute, self.origin)
        return absolute


def _skipped(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _check_main(files: dict[str, bytes], main: str, label: str) -> str:
    main = clean_relative_path(main)
    if main not in files:
        raise WorkflowInvalid([bundle_error(f"{label} has no {main}", file=main)])
    return main


def clean_relative_path(path: str) -> str:
    """``./a//b.wdl`` → ``a/b.wdl``; raise :class:`ValueError` for absolute or escaping paths."""
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        raise ValueError(f"{path!r} is not a relative path")
    cleaned = posixpath.normpath(path)
    if cleaned == ".." or cleaned.startswith("../") or cleaned == ".":
        raise ValueError(f"{path!r} leads outside the bundle")
    return cleaned


class _Limits:
    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0
        self.total = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.total += size
        if self.count > MAX_FILES:
            raise WorkflowInvalid([bundle_error(f"{self.label} has more than {MAX_FILES} files")])
        if self.total > MAX_TOTAL_BYTES:
            megabytes = MAX_TOTAL_BYTES // (1024 * 1024)
            raise WorkflowInvalid([bundle_error(f"{self.label} is larger than {megabytes} MB")])


def bundle_from_folder(folder: str | os.PathLike[str], main: str = DEFAULT_MAIN) -> Bundle:
    """Every regular file under ``folder`` (symbolic links only when they stay inside)."""
    root = Path(folder).resolve()
    label = f"folder {Path(folder).name or root}"
    if not root.is_dir():
        raise WorkflowInvalid([bundle_error(f"{folder} is not a folder")])
    limits = _Limits(label)
    files: dict[str, bytes] = {}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(names):
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if _skipped(relative) or not path.resolve().is_relative_to(root):
                continue
            if not path.is_file():
                continue
            limits.add(path.stat().st_size)
            files[relative] = path.read_bytes()
    return Bundle(files=files, main=_check_main(files, main, label), origin=str(root), label=label)


def bundle_from_file(path: str | os.PathLike[str]) -> Bundle:
    """A bundle of one WDL file (it can't import anything)."""
    source = Path(path)
    if not source.is_file():
        raise WorkflowInvalid([bundle_error(f"{path} is not a file")])
    size = source.stat().st_size
    _Limits(source.name).add(size)
    return bundle_from_text(source.read_bytes(), name=source.name)


def bundle_from_text(source: str | bytes, name: str = DEFAULT_MAIN) -> Bundle:
    """A bundle of one WDL document given as text."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    name = clean_relative_path(name)
    return Bundle(files={name: data}, main=name, label=name)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def bundle_from_zip(archive: bytes | str | os.PathLike[str], main: str = DEFAULT_MAIN) -> Bundle:
    """The files of a zip archive. When the main file is not at the top but the archive holds one
    single top-level folder (as code-hosting archives do), that folder is the bundle root."""
    if isinstance(archive, bytes):
        label, stream = "zip archive", io.BytesIO(archive)
        opened: zipfile.ZipFile | None = None
        try:
            opened = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise WorkflowInvalid([bundle_error(f"not a zip archive: {exc}")]) from None
    else:
        label = f"zip archive {Path(archive).name}"
        try:
            opened = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise WorkflowInvalid([bundle_error(f"{label}: can't be read as zip: {exc}")]) from None
    with opened as zipped:
        files = _zip_files(zipped, label)
    files = _strip_single_top_folder(files, clean_relative_path(main))
    return Bundle(files=files, main=_check_main(files, main, label), label=label)


def _zip_files(zipped: zipfile.ZipFile, label: str) -> dict[str, bytes]:
    limits = _Limits(label)
    files: dict[str, bytes] = {}
    problems = []
    for info in sorted(zipped.infolist(), key=lambda i: i.filename):
        if info.is_dir() or _is_symlink(info):
            continue
        try:
            relative = clean_relative_path(info.filename)
        except ValueError as exc:
            problems.append(bundle_error(f"{label}: unsafe entry name: {exc}"))
            continue
        if _skipped(relative):
            continue
        limits.add(info.file_size)
        try:
            with zipped.open(info) as member:
                data = member.read(MAX_TOTAL_BYTES + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            problems.append(bundle_error(f"{label}: can't read {relative}: {exc}"))
            continue
        if len(data) != info.file_size:
            problems.append(bundle_error(f"{label}: {relative} is not the size the archive says"))
            continue
        files[relative] = data
    if problems:
        raise WorkflowInvalid(problems)
    return files


def _strip_single_top_folder(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    if main in files or not files:
        return files
    tops = {PurePosixPath(path).parts[0] for path in files}
    if len(tops) != 1 or any("/" not in path for path in files):
        return files
    prefix = tops.pop() + "/"
    return {path[len(prefix) :]: data for path, data in files.items()}


def open_bundle(source: bytes | str | os.PathLike[str], main: str = DEFAULT_MAIN) -> Bundle:
    """A bundle from a folder, a zip archive (path or bytes) or a single ``.wdl`` file."""
    if isinstance(source, bytes):
        return bundle_from_zip(source, main)
    path = Path(source)
    if path.is_dir():
        return bundle_from_folder(path, main)
    if zipfile.is_zipfile(path):
        return bundle_from_zip(path, main)
    return bundle_from_file(path)


def bundle_digest(bundle: Bundle) -> str:
    """sha256 (hex) over every file's path and content, in path order: equal files, equal digest."""
    digest = hashlib.sha256()
    for path in sorted(bundle.files):
        data = bundle.files[path]
        encoded = path.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def write_bundle(bundle: Bundle, folder: str | os.PathLike[str]) -> Path:
    """Write the bundle's files under ``folder`` (created if needed); return the main file's path.
    For engines that read the workflow from disk."""
    root = Path(folder)
    for relative, data in bundle.files.items():
        target = root / clean_relative_path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root / bundle.main
