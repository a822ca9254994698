"""Add an operation to the catalog: fetch its source, check its spec, build its image, record it.

    operation, created = ingest_operation("https://github.com/org/op.git", commit="1a2b3c…")

A source is a local folder, a local git repository (a folder with ``.git``: its committed state
is used, never uncommitted changes) or a git URL (``file://``, ``https://``, ``ssh://``,
``git@host:path``). Git sources are cloned into a temporary folder and checked out at the exact
commit (default: the HEAD of the default branch); the full commit sha is the ``revision``. For a
plain folder the revision is a sha256 over its files (sorted relative paths, executable bits and
contents), so unchanged content gives the same revision.

The spec is ``operation.json`` / ``operation.yaml`` / ``operation.yml`` (Ferry's) or WebMEV's
``operation_spec.json`` (+ ``entrypoint.txt``, converted by :mod:`operations.webmev`).

Operations are immutable: a (name, revision) already in the catalog is returned as it is — no
rebuild, no update. Otherwise the image is built from the source's ``Dockerfile`` (WebMEV:
``docker/Dockerfile``) and tagged ``ferry-op/<name>:<version>-<revision[:12]>``; only a
successful build is recorded.

Errors are :class:`IngestionError` (an ``ApplicationError``; status 400 unless said otherwise):
``invalid_source`` (can't fetch it, no spec, no Dockerfile), ``unsupported_mode`` (WDL, for
now), ``build_failed`` (the message names the failing step and ends with the log's tail), and
``docker_unavailable`` (503). An invalid spec raises :class:`~operations.spec.SpecError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from django.db import IntegrityError, transaction

from api.errors import ApplicationError

from . import webmev
from .models import Operation, OperationMode
from .spec import SpecError, check_spec, load_document

FERRY_SPEC_NAMES = ("operation.json", "operation.yaml", "operation.yml")
IMAGE_REPOSITORY = "ferry-op"
GIT_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 3600
LOG_TAIL_LINES = 25
BUILD_LOG_MAX_CHARS = 500_000
WDL_REFUSED = "WDL operations arrive in a later version; only docker operations can be added now."

Progress = Callable[[str], None]


class IngestionError(ApplicationError):
    """Adding the operation failed; nothing was recorded."""

    code = "build_failed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, list[str]] | None = None,
        build_log: str = "",
    ) -> None:
        super().__init__(message, code=code, status_code=status_code, details=details)
        self.build_log = build_log

    @property
    def log_tail(self) -> str:
        return log_tail(self.build_log)


def log_tail(log: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(log.rstrip("\n").splitlines()[-lines:])


def _invalid_source(message: str) -> IngestionError:
    return IngestionError(message, code="invalid_source")


# --- fetching -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedSource:
    folder: Path  # a private copy of the operation's files
    revision: str  # the git commit, or the folder's content digest
    source: str  # what the Operation records (credentials removed from URLs)
    label: str  # a name for the source's folder or repository


_SCP_LIKE_RE = re.compile(r"^[\w.-]+@[\w.-]+:")
_URL_USERINFO_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


def is_git_url(source: str) -> bool:
    return "://" in source or bool(_SCP_LIKE_RE.match(source))


def redact_url(url: str) -> str:
    """Drop ``user:token@`` from a URL before it is recorded or shown."""
    return _URL_USERINFO_RE.sub(r"\1", url)


def folder_digest(folder: Path) -> str:
    """sha256 over a folder's files: sorted relative paths, executable bits, contents (symlinks
    by their target). Empty folders don't count."""
    entries: list[tuple[str, bytes]] = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for name in list(dirs):
            if (base / name).is_symlink():
                dirs.remove(name)
                files.append(name)
        for name in files:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                entries.append((rel, b"L" + os.readlink(path).encode()))
                continue
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    digest.update(chunk)
            executable = b"x" if mode & stat.S_IXUSR else b"-"
            entries.append((rel, b"F" + executable + digest.hexdigest().encode()))
    total = hashlib.sha256()
    for rel, entry in sorted(entries):
        total.update(rel.encode() + b"\0" + entry + b"\n")
    return total.hexdigest()


def _git(args: list[str], *, cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S) -> str:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "LC_ALL": "C",
    }
    try:
        done = subprocess.run(
            ["git", "-c", "protocol.ext.allow=never", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise _invalid_source("git is not installed (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise _invalid_source(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise _GitFailed((done.stderr or done.stdout).strip())
    return done.stdout.strip()


class _GitFailed(Exception):
    pass


def _fetch_git(
    url: str, commit: str | None, dest: Path, report: Progress, *, shown: str
) -> tuple[Path, str]:
    report(f"Cloning {shown}")
    try:
        _git(["clone", "--quiet", "--no-checkout", "--", url, str(dest)])
    except _GitFailed as exc:
        raise _invalid_source(f"could not clone {shown}: {_last_lines(str(exc))}") from None
    target = commit or "HEAD"
    sha = _resolve_commit(dest, target)
    if sha is None and commit and re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
        try:  # a commit no branch or tag reaches: ask for it by name
            _git(["fetch", "--quiet", "origin", commit], cwd=dest)
            sha = _resolve_commit(dest, "FETCH_HEAD")
        except _GitFailed:
            sha = None
    if sha is None:
        raise _invalid_source(f"{shown} has no commit {target!r}")
    try:
        _git(["checkout", "--quiet", "--detach", sha], cwd=dest)
    except _GitFailed as exc:
        raise _invalid_source(f"could not check out {sha}: {_last_lines(str(exc))}") from None
    report(f"Checked out commit {sha}")
    # The build context is the work tree only; git's own files stay out of images.
    shutil.rmtree(dest / ".git", ignore_errors=True)
    return dest, sha


def _resolve_commit(repo: Path, target: str) -> str | None:
    for candidate in (target, f"origin/{target}"):
        try:
            return _git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], cwd=repo)
        except _GitFailed:
            continue
    return None


def _last_lines(text: str, lines: int = 5) -> str:
    return " / ".join(text.strip().splitlines()[-lines:]) or "no details"


def fetch_source(source: str, commit: str | None, workdir: Path, report: Progress) -> FetchedSource:
    """Copy or clone ``source`` into ``workdir`` and work out its revision."""
    dest = workdir / "src"
    path = Path(source).expanduser()
    if path.exists():
        path = path.resolve()
        if not path.is_dir():
            raise _invalid_source(f"{path} is not a folder")
        if (path / ".git").exists():
            try:
                if _git(["status", "--porcelain"], cwd=path, timeout=60):
                    report(f"Note: uncommitted changes in {path} are not used (only commits are)")
            except _GitFailed:
                pass
            folder, sha = _fetch_git(str(path), commit, dest, report, shown=str(path))
            return FetchedSource(folder, sha, str(path), path.name)
        if commit:
            raise _invalid_source(
                f"{path} is a plain folder, not a git repository: --commit doesn't apply"
            )
        report(f"Reading {path}")
        shutil.copytree(path, dest, symlinks=True)
        return FetchedSource(dest, folder_digest(dest), str(path), path.name)
    if is_git_url(source):
        shown = redact_url(source)
        folder, sha = _fetch_git(source, commit, dest, report, shown=shown)
        label = re.sub(r"\.git$", "", shown.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
        return FetchedSource(folder, sha, shown, label)
    raise _invalid_source(f"{source} is neither a folder nor a git URL")


# --- the spec -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundSpec:
    spec: dict[str, Any]
    spec_file: str  # relative to the source
    dockerfile: str  # relative to the source
    context: Path  # the build context


def _dockerfile_for(folder: Path, candidates: tuple[str, ...], shown: str) -> tuple[str, Path]:
    for name in candidates:
        if (folder / name).is_file():
            return name, (folder / name).parent
    names = " or ".join(candidates)
    raise _invalid_source(f"{shown} has no {names}: the operation's image is built from it")


def read_spec(folder: Path, *, label: str, shown: str) -> FoundSpec:
    """Find, parse and check the spec in a fetched source; find its Dockerfile."""
    present = [name for name in FERRY_SPEC_NAMES if (folder / name).is_file()]
    if len(present) > 1:
        raise _invalid_source(f"{shown} has {' and '.join(present)}: keep only one")
    if present:
        name = present[0]
        spec = check_spec(
            load_document((folder / name).read_bytes(), source_name=name), source_name=name
        )
        if spec["mode"] == OperationMode.WDL:
            raise IngestionError(WDL_REFUSED, code="unsupported_mode")
        dockerfile, context = _dockerfile_for(folder, ("Dockerfile",), shown)
        return FoundSpec(spec, name, dockerfile, context)
    if (folder / webmev.SPEC_FILENAME).is_file():
        raw = load_document(
            (folder / webmev.SPEC_FILENAME).read_bytes(), source_name=webmev.SPEC_FILENAME
        )
        if isinstance(raw, dict) and raw.get("mode") in ("cromwell", "wdl"):
            raise IngestionError(WDL_REFUSED, code="unsupported_mode")
        entrypoint = folder / webmev.ENTRYPOINT_FILENAME
        converters = folder / webmev.CONVERTERS_FILENAME
        spec = webmev.convert_webmev(
            raw,
            entrypoint=entrypoint.read_text("utf-8") if entrypoint.is_file() else None,
            converters=converters.read_bytes() if converters.is_file() else None,
            folder_name=label,
        )
        dockerfile, context = _dockerfile_for(folder, ("docker/Dockerfile", "Dockerfile"), shown)
        return FoundSpec(spec, webmev.SPEC_FILENAME, dockerfile, context)
    expected = ", ".join([*FERRY_SPEC_NAMES, webmev.SPEC_FILENAME + " (WebMEV)"])
    raise _invalid_source(f"{shown} has no operation spec; expected one of: {expected}")


# --- the image ------------------------------------------------------------------------------------


def image_tag(name: str, version: str, revision: str) -> str:
    safe_version = re.sub(r"[^A-Za-z0-9_.-]", "_", version)
    return f"{IMAGE_REPOSITORY}/{name}:{safe_version}-{revision[:12]}"


def _api_client() -> docker.APIClient:
    try:
        client: docker.APIClient = docker.from_env(timeout=BUILD_TIMEOUT_S).api
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise IngestionError(
            f"the Docker engine can't be reached: {exc}",
            code="docker_unavailable",
            status_code=503,
        ) from None
    return client


def build_image(
    client: docker.APIClient,
    *,
    context: Path,
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    report: Progress,
) -> str:
    """Build ``tag`` from ``context``, streaming steps to ``report``; return the build log."""
    log: list[str] = []
    step = ""
    error = ""
    try:
        chunks: Iterator[dict[str, Any]] = client.build(
            path=str(context),
            dockerfile=Path(dockerfile).name,
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            labels=labels,
        )
        for chunk in chunks:
            if "stream" in chunk:
                text = str(chunk["stream"])
                log.append(text)
                for line in text.splitlines():
                    if line.startswith("Step "):
                        step = line.strip()
                        report(step)
            elif "status" in chunk:
                progress = chunk.get("progress")
                if not progress:  # pulls: keep the statuses, not the progress bars
                    log.append(f"{chunk['status']}\n")
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                error = str(chunk.get("error") or detail.get("message") or "unknown error")
                log.append(f"ERROR: {error}\n")
                break
    except docker.errors.APIError as exc:
        error = str(exc.explanation or exc)
        log.append(f"ERROR: {error}\n")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        error = f"the Docker engine failed during the build: {exc}"
        log.append(f"ERROR: {error}\n")
    text = "".join(log)
    if not error:
        try:
            client.inspect_image(tag)
        except docker.errors.DockerException as exc:
            error = f"the build reported no error, but {tag} does not exist: {exc}"
    if error:
        where = f"at {step!r}" if step else "before its first step"
        tail = log_tail(text)
        raise IngestionError(
            f"building {tag} failed {where}: {error}\n--- last lines of the build log ---\n{tail}",
            code="build_failed",
            details={"build": [f"{step}: {error}" if step else error]},
            build_log=text,
        )
    return text


def _stored_log(log: str) -> str:
    if len(log) <= BUILD_LOG_MAX_CHARS:
        return log
    return "[… earlier lines dropped …]\n" + log[-BUILD_LOG_MAX_CHARS:]


# --- the whole thing ------------------------------------------------------------------------------


def ingest_operation(
    source: str,
    *,
    commit: str | None = None,
    added_by: Any = None,
    progress: Progress | None = None,
    docker_client: docker.APIClient | None = None,
) -> tuple[Operation, bool]:
    """Add the operation at ``source`` (at ``commit`` for git) to the catalog.

    Returns ``(operation, created)``; ``created`` is False when this name and revision were
    already recorded (nothing is rebuilt then). Raises :class:`IngestionError` or
    :class:`~operations.spec.SpecError`; on error nothing is recorded.
    """
    report: Progress = progress or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="ferry-ingest-") as tmp:
        fetched = fetch_source(source, commit, Path(tmp), report)
        report(f"Revision {fetched.revision}")
        found = read_spec(fetched.folder, label=fetched.label, shown=fetched.source)
        spec = found.spec
        name, version = spec["name"], spec["version"]
        report(
            f"{found.spec_file}: {name} {version} "
            f"({len(spec['inputs'])} inputs, {len(spec['outputs'])} outputs)"
        )
        existing = Operation.objects.filter(name=name, revision=fetched.revision).first()
        if existing is not None:
            report(
                f"{name} {version} at revision {fetched.revision[:12]} is already in the catalog"
            )
            return existing, False

        tag = image_tag(name, version, fetched.revision)
        report(f"Building {tag} from {found.dockerfile}")
        client = docker_client or _api_client()
        labels = {
            "org.ferry.operation": name,
            "org.ferry.version": version,
            "org.ferry.revision": fetched.revision,
            "org.ferry.source": fetched.source,
        }
        build_log = build_image(
            client,
            context=found.context,
            dockerfile=found.dockerfile,
            tag=tag,
            labels=labels,
            report=report,
        )
        report(f"Built {tag}")

    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                name=name,
                version=version,
                revision=fetched.revision,
                description=spec["description"],
                mode=spec["mode"],
                spec=spec,
                image=tag,
                source=fetched.source,
                build_log=_stored_log(build_log),
                added_by=added_by,
            )
    except IntegrityError:
        # Someone added the same revision while we were building: theirs stands.
        existing = Operation.objects.filter(name=name, revision=fetched.revision).first()
        if existing is None:
            raise
        return existing, False
    report(f"Added {name} {version} ({operation.id})")
    return operation, True


__all__ = [
    "IngestionError",
    "SpecError",
    "build_image",
    "fetch_source",
    "folder_digest",
    "image_tag",
    "ingest_operation",
    "read_spec",
]
