"""Add an operation to the catalog: fetch its source, check its spec, build its image, record it.

    operation, created = ingest_operation("https://github.com/org/op.git", commit="1a2b3c…")

A source is a local folder, a local git repository (a folder with ``.git``: its committed state
is used, never uncommitted changes) or a git URL (``file://``, ``https://``, ``ssh://``,
``git@host:path``). Git sources are cloned into a temporary folder and checked out at the exact
commit (default: the HEAD of the default branch); the full commit sha is the ``revision``. For a
plain folder the revision is a sha256 over its files (sorted relative paths, executable bits and
contents), so unchanged content gives the same revision.

The spec is ``operation.json`` / ``operation.yaml`` / ``operation.yml`` (Ferry's) or WebMEV's
``operation_spec.json`` (+ ``entrypoint.txt``, converted by :mod:`operations.webmev`). A WebMEV
``"mode": "cromwell"`` folder (``main.wdl`` + ``docker/``) is added by
:mod:`operations.webmev_cromwell` as a WDL operation keeping WebMEV's inputs mapping.

Operations are immutable: a (name, revision) already in the catalog is returned as it is — no
rebuild, no update. Otherwise the image is built from the source's ``Dockerfile`` (WebMEV:
``docker/Dockerfile``) and tagged ``ferry-op/<name>:<version>-<revision[:12]>``; only a
successful build is recorded. A WebMEV operation from git runs, as in WebMEV, the image published
for its commit, ``ghcr.io/web-mev/<repository>:sha-<commit>`` (or
``docker.io/web-mev/<repository>:<commit>``), when the engine holds it: nothing is built then
(``Operation.image_origin`` says ``found`` or ``built``; see :func:`operation_image`).

WDL operations (``mode: wdl``) need only their WDL: a source is one when its Ferry spec says
``"mode": "wdl"``, or when it has ``.wdl`` files and no Dockerfile (and its spec, if any, sets
neither mode nor command). The spec is then optional *metadata* — ``name``, ``version``,
``description``, ``workflow`` (the main file, default ``main.wdl``; without a spec, the only
top-level ``.wdl`` file also does), ``resources`` and per-input/output ``description``,
``file_types`` (inputs) and ``file_type`` (outputs). The workflow and its imports are loaded and
checked with miniwdl, and the inputs and outputs are derived from its signature
(:func:`wdl.workflow_signature`). Without metadata, the name is the workflow's name in lower
case with ``_`` → ``-`` (``count_rows`` → ``count-rows``), the version is the workflow's
``meta { version: "…" }`` or ``1.0.0``, the description its ``meta`` description. Only
``.wdl`` files (and the main file) belong to the workflow; every other file is ignored. The
revision is the git commit, or for a folder a sha256 over those files and the metadata file.
Nothing is built (the tasks name their own images): the workflow's files are kept, read-only by
convention, in :func:`wdl_bundle_dir` (``$FERRY_VAR_DIR/operations/<name>/<revision>``), and
``spec["wdl"]`` records ``workflow_name``, ``wdl_version``, ``imports`` and ``files``, and
``engine_names`` when the workflow leaves inputs of its calls unset (``{"hello__name":
"hello.name"}``: those are operation inputs too, see ``wdl/call_inputs.py``), and
``output_names`` for draft-2 outputs named by their call (``{"hello__salutation":
"hello.salutation"}``).

A workflow miniwdl refuses is shown to the active registered Cromwell servers' describe: when
one accepts it, it is added for Cromwell servers only (``Operation.executors``), its inputs and
outputs from that description, miniwdl's refusal in ``spec["wdl"]["miniwdl_refuses"]`` and the
check log; what womtool would refuse of a workflow miniwdl accepts is a warning
(``spec["wdl"]["womtool_warnings"]``). See docs/wdl.md.

Errors are :class:`IngestionError` (an ``ApplicationError``; status 400 unless said otherwise):
``invalid_source`` (can't fetch it, no spec, no Dockerfile, no workflow file),
``invalid_workflow`` (miniwdl refused the workflow; ``details["workflow"]`` lists every problem
as ``file:line:column: message``), ``unsupported_mode`` (a WDL folder with a Ferry spec that
asks for a build),
``build_failed`` (the message names the failing step and ends with the log's tail),
``docker_unavailable`` (503) and ``storage_failed`` (503: a WDL operation's files can't be kept).
An invalid spec (or WDL metadata) raises :class:`~operations.spec.SpecError`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import WDL
from django.conf import settings
from django.db import IntegrityError, transaction

import wdl
from api.exceptions import ApplicationError
from executors.base import (
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    ImageBuild,
    ImageBuildFailed,
)
from executors.registry import executor_for_mode
from wdl.bundle import MAX_FILES, MAX_TOTAL_BYTES, clean_relative_path
from wdl.errors import format_error
from wdl.outputs import describe_shape

from . import webmev
from .models import CROMWELL_ANY, ImageOrigin, Operation, OperationMode
from .spec import (
    NAME_MAX_LENGTH,
    VERSION_MAX_LENGTH,
    VERSION_RE,
    SpecError,
    check_spec,
    child_path,
    load_document,
)
from .wdl_engines import CromwellVerdicts, ask_cromwell_servers, cromwell_opinions

FERRY_SPEC_NAMES = ("operation.json", "operation.yaml", "operation.yml")
IMAGE_REPOSITORY = "ferry-op"
GIT_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 3600
LOG_TAIL_LINES = 25
BUILD_LOG_MAX_CHARS = 500_000
WEBMEV_WDL_REFUSED = (
    'WebMEV operations say "mode": "cromwell" for a workflow (main.wdl + docker/); "wdl" is '
    "Ferry's own spelling: add the folder with a Ferry operation.json, or say cromwell"
)
WDL_BUNDLES_FOLDER = "operations"  # under settings.FERRY_VAR_DIR
WDL_DEFAULT_VERSION = "1.0.0"
WDL_METADATA_KEYS = (
    "name",
    "version",
    "description",
    "mode",
    "workflow",
    "resources",
    "inputs",
    "outputs",
)

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
    is_git: bool = False  # the revision is a commit (not a content digest)


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
    try:
        is_path = path.exists()
    except OSError:  # e.g. a name longer than a path may be: not a folder, maybe a URL
        is_path = False
    if is_path:
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
            return FetchedSource(folder, sha, str(path), path.name, is_git=True)
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
        return FetchedSource(folder, sha, shown, label, is_git=True)
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


def ferry_spec_name(folder: Path, shown: str) -> str | None:
    """The name of the source's Ferry spec file, if it has one (two or more: an error)."""
    present = [name for name in FERRY_SPEC_NAMES if (folder / name).is_file()]
    if len(present) > 1:
        raise _invalid_source(f"{shown} has {' and '.join(present)}: keep only one")
    return present[0] if present else None


def read_spec(folder: Path, *, label: str, shown: str) -> FoundSpec:
    """Find, parse and check a docker operation's spec in a fetched source; find its
    Dockerfile. (WDL sources: :func:`find_wdl_source`.)"""
    name = ferry_spec_name(folder, shown)
    if name is not None:
        spec = check_spec(
            load_document((folder / name).read_bytes(), source_name=name), source_name=name
        )
        if spec["mode"] == OperationMode.WDL:
            raise IngestionError(
                f"{shown} is a WDL operation: it has no image to build", code="unsupported_mode"
            )
        dockerfile, context = _dockerfile_for(folder, ("Dockerfile",), shown)
        return FoundSpec(spec, name, dockerfile, context)
    if (folder / webmev.SPEC_FILENAME).is_file():
        raw = load_document(
            (folder / webmev.SPEC_FILENAME).read_bytes(), source_name=webmev.SPEC_FILENAME
        )
        if isinstance(raw, dict) and raw.get("mode") == "wdl":
            raise IngestionError(WEBMEV_WDL_REFUSED, code="unsupported_mode")
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


def image_builder(mode: str) -> Executor:
    """The executor that builds images for ``mode`` operations: the one they run on (its
    declared ``builds_images``); an IngestionError when none does."""
    try:
        executor = executor_for_mode(mode)
    except ExecutorError as exc:
        raise IngestionError(str(exc), code="no_executor", status_code=503) from None
    if not executor.builds_images:
        raise IngestionError(
            f"The executor {executor.alias} that runs {mode} operations can't build images.",
            code="no_image_builder",
            status_code=503,
        )
    return executor


def build_image(
    executor: Executor,
    *,
    context: Path,
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    report: Progress,
) -> str:
    """Build ``tag`` from ``context`` with the executor's build hook, streaming steps to
    ``report``, and push it when the executor pushes images; return the build log."""
    build = ImageBuild(context, dockerfile, tag, labels, report)
    try:
        log = executor.build_image(build)
        if executor.pushes_images:
            report(f"Pushing {tag}")
            log += executor.push_image(tag)
    except ImageBuildFailed as exc:
        raise _build_failed(tag, exc) from None
    except ExecutorUnavailable as exc:
        raise IngestionError(str(exc), code="docker_unavailable", status_code=503) from None
    except ExecutorError as exc:
        raise _build_failed(tag, ImageBuildFailed(tag, "", str(exc), "")) from None
    return log


def _build_failed(tag: str, failed: ImageBuildFailed) -> IngestionError:
    tail = log_tail(failed.log)
    return IngestionError(
        f"{failed}\n--- last lines of the build log ---\n{tail}",
        code="build_failed",
        details={"build": [f"{failed.step}: {failed.error}" if failed.step else failed.error]},
        build_log=failed.log,
    )


def _stored_log(log: str) -> str:
    if len(log) <= BUILD_LOG_MAX_CHARS:
        return log
    return "[… earlier lines dropped …]\n" + log[-BUILD_LOG_MAX_CHARS:]


# --- WebMEV's published images -------------------------------------------------------------------

# WebMEV never builds a local_docker operation's image: it pulls the one its repository's GitHub
# Actions published for the commit (mev-backend, get_image_name_and_tag), from GitHub's registry
# or Docker Hub. Ferry looks for those names on the engine (no registry is pulled from).
WEBMEV_PUBLISHED_IMAGES = (
    "ghcr.io/web-mev/{repository}:sha-{commit}",
    "docker.io/web-mev/{repository}:{commit}",
)
# A repository name as an image reference allows it (lower case, separators inside).
_IMAGE_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# The failed step as the build reports it: "Step 1/6 : FROM mambaorg/micromamba: <error>".
_FROM_STEP_RE = re.compile(r"^Step \d+/\d+ : FROM\s+(?:--\S+\s+)*(\S+?)(?::?\s|:?$)", re.I)


@dataclass(frozen=True)
class OperationImage:
    name: str  # what the operation's jobs run
    origin: ImageOrigin
    log: str  # the build log, or how the image was found


def webmev_image_names(fetched: FetchedSource, spec_file: str) -> list[str]:
    """The names WebMEV would pull for this source: none unless it is a WebMEV operation from
    git (the names hold the commit) whose repository name can be part of an image name."""
    if spec_file != webmev.SPEC_FILENAME or not fetched.is_git:
        return []
    repository = re.sub(r"\.git$", "", fetched.label).lower()
    if not _IMAGE_COMPONENT_RE.fullmatch(repository):
        return []
    return [
        pattern.format(repository=repository, commit=fetched.revision)
        for pattern in WEBMEV_PUBLISHED_IMAGES
    ]


def operation_image(
    builder: Executor,
    found: FoundSpec,
    fetched: FetchedSource,
    *,
    tag: str,
    labels: dict[str, str],
    report: Progress,
) -> OperationImage:
    """The image a docker operation's jobs run: for a WebMEV operation from git, the image
    WebMEV publishes for its commit when the engine already holds it under that name (used as
    it is, nothing built); otherwise ``tag``, built from the source's Dockerfile."""
    names = webmev_image_names(fetched, found.spec_file)
    for name in names:
        try:
            present = builder.image_labels(name) is not None
        except ExecutorError as exc:
            raise IngestionError(str(exc), code="docker_unavailable", status_code=503) from None
        if present:
            log = (
                f"Not built: {name} is on the engine. It is the image WebMEV "
                f"publishes for commit {fetched.revision} of {fetched.source}, which WebMEV pulls "
                f"instead of building {found.dockerfile}.\n"
            )
            report(f"Using {name}, found on the engine (WebMEV's image for this commit)")
            return OperationImage(name, ImageOrigin.FOUND, log)
    if names:
        report(f"{' and '.join(names)}: not on the engine")
    report(f"Building {tag} from {found.dockerfile}")
    try:
        log = build_image(
            builder,
            context=found.context,
            dockerfile=found.dockerfile,
            tag=tag,
            labels=labels,
            report=report,
        )
    except IngestionError as exc:
        if names and exc.code == "build_failed":
            raise _published_image_missing(exc, names, found.dockerfile) from None
        raise
    report(f"Built {tag}")
    return OperationImage(tag, ImageOrigin.BUILT, log)


def _published_image_missing(
    failed: IngestionError, names: list[str], dockerfile: str
) -> IngestionError:
    """The build failure of a WebMEV operation, saying which images were looked for and how to
    provide one (most fail on a base image no registry here serves)."""
    step = (failed.details.get("build") or [""])[0]
    base = _FROM_STEP_RE.match(step)
    why = (
        f"its base image {base.group(1)} can't be pulled here"
        if base
        else "it failed (see the build log)"
    )
    hint = (
        f"WebMEV doesn't build this image: it pulls {names[0]} (or {names[1]}). Ferry looked "
        f"for both on the local Docker engine and found neither, then built {dockerfile}, "
        f"but {why}. Provide the image and add the operation again: build or load it where "
        f"you can, then `docker tag <your image> {names[0]}`."
    )
    return IngestionError(
        f"{hint}\n{failed.message}",
        code=failed.code,
        status_code=failed.status_code,
        details={**failed.details, "image": [hint]},
        build_log=failed.build_log,
    )


# --- WDL operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WdlSource:
    """A source that is a WDL operation, with its metadata document (``{}`` without one)."""

    metadata: Mapping[str, Any]
    metadata_file: str | None
    metadata_bytes: bytes


@dataclass(frozen=True)
class CheckedWorkflow:
    """A WDL source that passed every check, ready to be kept and recorded."""

    spec: dict[str, Any]
    bundle: wdl.Bundle
    revision: str
    log: str
    # Operation.executors: [] (every executor of its mode), or ["cromwell:*"] for a workflow
    # miniwdl refuses and a Cromwell server accepts
    executors: list[str] = field(default_factory=list)


def _visible_files(folder: Path) -> dict[str, Path]:
    """The regular files under ``folder`` by relative path, hidden ones (``.git``…) left out, and
    symbolic links only when they stay inside."""
    root = folder.resolve()
    found: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(names):
            path = Path(directory, name)
            if name.startswith(".") or not path.is_file():
                continue
            if path.resolve().is_relative_to(root):
                found[path.relative_to(root).as_posix()] = path
    return found


def _is_wdl_file(relative: str) -> bool:
    return relative.lower().endswith(".wdl")


def find_wdl_source(folder: Path, *, shown: str) -> WdlSource | None:
    """The source as a WDL operation; ``None`` when it is a docker (or WebMEV) one."""
    spec_name = ferry_spec_name(folder, shown)
    has_dockerfile = (folder / "Dockerfile").is_file()
    if spec_name is None:
        if has_dockerfile or (folder / webmev.SPEC_FILENAME).is_file():
            return None
        has_wdl = any(_is_wdl_file(relative) for relative in _visible_files(folder))
        return WdlSource({}, None, b"") if has_wdl else None
    data = (folder / spec_name).read_bytes()
    raw = load_document(data, source_name=spec_name)
    if not isinstance(raw, Mapping):
        return None  # read_spec reports what is wrong with it
    mode = raw.get("mode")
    implied = (
        mode is None
        and "command" not in raw
        and not has_dockerfile
        and any(_is_wdl_file(relative) for relative in _visible_files(folder))
    )
    return WdlSource(raw, spec_name, data) if mode == OperationMode.WDL or implied else None


def _no_workflow_file(message: str) -> IngestionError:
    return IngestionError(message, code="invalid_source", details={"workflow": [message]})


def _main_file(source: WdlSource, visible: Mapping[str, Path], shown: str) -> str:
    """The workflow's main file: metadata's ``workflow``, else main.wdl, else the only
    top-level .wdl file."""
    named = source.metadata.get("workflow")
    where = source.metadata_file or FERRY_SPEC_NAMES[0]
    if named is not None:
        if not isinstance(named, str):
            raise SpecError(
                [{"path": "$.workflow", "message": "must be a path like main.wdl"}],
                source_name=where,
            )
        try:
            main = clean_relative_path(named)
        except ValueError as exc:
            raise SpecError(
                [{"path": "$.workflow", "message": f"{exc}: give the path inside the source"}],
                source_name=where,
            ) from None
        if main not in visible:
            raise _no_workflow_file(f"{shown} has no {main} (the workflow {where} names)")
        return main
    if wdl.DEFAULT_MAIN in visible:
        return wdl.DEFAULT_MAIN
    top_level = sorted(path for path in visible if "/" not in path and _is_wdl_file(path))
    if len(top_level) == 1:
        return top_level[0]
    found = f"it has {', '.join(top_level)}" if top_level else "it has none at the top"
    raise _no_workflow_file(
        f"{shown} has no {wdl.DEFAULT_MAIN} and {found}: name the main file with "
        f'"workflow" in {where}'
    )


def workflow_bundle(folder: Path, source: WdlSource, *, shown: str) -> wdl.Bundle:
    """The workflow's files of a fetched source: every .wdl file, and the main file."""
    visible = _visible_files(folder)
    main = _main_file(source, visible, shown)
    chosen = sorted(path for path in visible if _is_wdl_file(path) or path == main)
    if len(chosen) > MAX_FILES:
        raise _invalid_source(f"{shown} has more than {MAX_FILES} .wdl files")
    if sum(visible[path].stat().st_size for path in chosen) > MAX_TOTAL_BYTES:
        raise _invalid_source(f"{shown}'s .wdl files add up to more than {MAX_TOTAL_BYTES} bytes")
    files = {path: visible[path].read_bytes() for path in chosen}
    return wdl.Bundle(files=files, main=main, origin=str(folder.resolve()), label=shown)


def workflow_invalid(exc: wdl.WorkflowInvalid) -> IngestionError:
    """The 400 for a workflow miniwdl refused: every problem as ``file:line:column: message``."""
    return IngestionError(
        f"the workflow is invalid: {exc}",
        code="invalid_workflow",
        details={"workflow": [format_error(error) for error in exc.errors]},
    )


def wdl_operation_name(workflow_name: str) -> str:
    """The operation name a workflow gets without metadata: ``Count_Rows`` → ``count-rows``."""
    slug = re.sub(r"[^a-z0-9]+", "-", workflow_name.lower()).strip("-")
    return slug[:NAME_MAX_LENGTH].rstrip("-")


def _workflow_version(loaded: wdl.LoadedWorkflow) -> str:
    """The workflow's ``meta { version: … }``, or the default version."""
    value = (loaded.workflow.meta or {}).get("version")
    if isinstance(value, WDL.Expr.Int | WDL.Expr.Float):
        value = value.value
    if value is None:
        return WDL_DEFAULT_VERSION
    text = str(value).strip()
    if isinstance(value, bool | dict | list) or not (
        VERSION_RE.match(text) and len(text) <= VERSION_MAX_LENGTH
    ):
        message = (
            f"the workflow's meta version {text!r} is not a valid version (letters, digits and "
            '. _ + -, like "1.0.0"): fix it, or set "version" in operation.json'
        )
        raise SpecError([{"path": "$.version", "message": message}], source_name=loaded.bundle.main)
    return text


def _metadata_problems(metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    problems = []
    for key in metadata:
        if key == "command":
            message = "applies to docker operations; a WDL operation runs its workflow"
        elif key not in WDL_METADATA_KEYS:
            message = f"unknown key for a WDL operation; known: {', '.join(WDL_METADATA_KEYS)}"
        else:
            continue
        problems.append({"path": child_path("$", key), "message": message})
    return problems


def wdl_revision(bundle: wdl.Bundle, source: WdlSource) -> str:
    """A folder's revision: sha256 over the workflow's files and the metadata file."""
    digest = hashlib.sha256(b"ferry-wdl-operation\0")
    digest.update(wdl.bundle_digest(bundle).encode() + b"\0")
    digest.update((source.metadata_file or "").encode() + b"\0" + source.metadata_bytes)
    return digest.hexdigest()


def _miniwdl_version() -> str:
    try:
        return importlib.metadata.version("miniwdl")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def _field_summary(name: str, field: Mapping[str, Any]) -> str:
    kind = str(field["type"])
    if kind in ("list", "map", "pair", "struct"):
        kind = describe_shape(field)
    elif kind == "file" and field.get("many"):
        kind = "files"
    parts = [kind]
    if not field.get("required", True):
        parts.append("optional")
    if field.get("default") is not None:
        parts.append(f"default {json.dumps(field['default'])}")
    return f"{name} ({', '.join(parts)})"


def _check_log(checked_spec: Mapping[str, Any], source: WdlSource, revision_kind: str) -> str:
    about = checked_spec["wdl"]
    fields = {
        section: ", ".join(_field_summary(n, f) for n, f in checked_spec[section].items())
        for section in ("inputs", "outputs")
    }
    metadata = source.metadata_file or "none (name, version and description from the workflow)"
    lines = [
        f"Checked with miniwdl {_miniwdl_version()}: the workflow and its imports parse and "
        "typecheck, and every input and output maps to an operation type.",
        f"Workflow: {about['workflow_name']} (WDL {about['wdl_version']}) in "
        f"{checked_spec['workflow']}",
        f"Imports: {', '.join(about['imports']) or 'none'}",
        f"Inputs: {fields['inputs'] or 'none'}",
        *(
            [f"Inputs of calls (the engines' names): {call_inputs}"]
            if (
                call_inputs := ", ".join(
                    f"{k} = {v}" for k, v in about.get("engine_names", {}).items()
                )
            )
            else []
        ),
        f"Outputs: {fields['outputs'] or 'none'}",
        f"Metadata: {metadata}",
        f"Operation: {checked_spec['name']} {checked_spec['version']}",
        f"Files kept: {', '.join(about['files'])}",
        f"Revision: {revision_kind}",
    ]
    return "\n".join(lines) + "\n"


def _operation_spec(
    source: WdlSource,
    signature: Mapping[str, Any],
    bundle: wdl.Bundle,
    workflow_version: Callable[[], str],
) -> dict[str, Any]:
    """The operation's spec from the workflow's signature and the source's metadata."""
    where = source.metadata_file
    metadata = {
        k: v for k, v in source.metadata.items() if k in ("description", "inputs", "outputs")
    }
    try:
        merged = wdl.merge_metadata(signature, metadata)
    except wdl.MetadataInvalid as exc:
        raise SpecError(exc.errors, source_name=where or bundle.main) from None
    document: dict[str, Any] = {
        "name": source.metadata.get("name", wdl_operation_name(signature["workflow_name"])),
        "version": (
            source.metadata["version"] if "version" in source.metadata else workflow_version()
        ),
        "description": merged["description"],
        "mode": OperationMode.WDL.value,
        "workflow": bundle.main,
        "inputs": merged["inputs"],
        "outputs": merged["outputs"],
    }
    if "resources" in source.metadata:
        document["resources"] = source.metadata["resources"]
    spec = check_spec(document, source_name=where or bundle.main)
    spec["wdl"] = {
        "workflow_name": signature["workflow_name"],
        "wdl_version": signature["wdl_version"],
        "imports": [],
        "files": sorted(bundle.files),
    }
    if signature.get("engine_names"):
        # Inputs of calls the workflow leaves unset: Ferry's name -> the engines' call.input.
        spec["wdl"]["engine_names"] = dict(signature["engine_names"])
    if signature.get("output_names"):
        # Draft-2 outputs named by their call: Ferry's name -> the engines' call.output.
        spec["wdl"]["output_names"] = dict(signature["output_names"])
    return spec


def _revision(fetched: FetchedSource, bundle: wdl.Bundle, source: WdlSource) -> tuple[str, str]:
    if fetched.is_git:
        return fetched.revision, f"{fetched.revision} (git commit)"
    revision = wdl_revision(bundle, source)
    return revision, f"{revision} (sha256 of the workflow's files and metadata)"


def check_wdl_source(
    fetched: FetchedSource, source: WdlSource, report: Progress
) -> CheckedWorkflow:
    """Load and check the workflow with miniwdl, derive the spec and work out the revision.
    A document miniwdl refuses is shown to the registered Cromwell servers
    (:func:`_check_with_cromwell`). Raises :class:`IngestionError` or
    :class:`~operations.spec.SpecError`."""
    problems = _metadata_problems(source.metadata)
    if problems:
        raise SpecError(problems, source_name=source.metadata_file or FERRY_SPEC_NAMES[0])
    bundle = workflow_bundle(fetched.folder, source, shown=fetched.source)
    report(f"Checking {bundle.main} and its imports with miniwdl {_miniwdl_version()}")
    try:
        loaded = wdl.load_workflow(bundle)
    except (wdl.NothingToRun, wdl.ImportNotServed) as exc:
        # a task library, an empty file, a URL import…: Ferry's rules, not miniwdl's
        raise workflow_invalid(exc) from None
    except wdl.WorkflowInvalid as exc:  # miniwdl refuses it: Cromwell may not
        return _check_with_cromwell(fetched, source, bundle, exc, report)
    try:
        signature = wdl.derive_signature(loaded)
    except wdl.WorkflowInvalid as exc:  # Ferry can't type its inputs or outputs
        raise workflow_invalid(exc) from None
    spec = _operation_spec(source, signature, bundle, lambda: _workflow_version(loaded))
    spec["wdl"]["imports"] = list(loaded.imported_files)
    if loaded.is_task:
        spec["wdl"]["task"] = True  # a document of one task, run by itself
    report(
        f"Workflow {loaded.workflow_name} (WDL {loaded.wdl_version}): "
        f"{len(loaded.imported_files)} imported files, {len(spec['inputs'])} inputs, "
        f"{len(spec['outputs'])} outputs"
    )
    # What Cromwell's womtool would refuse (wdl/womtool_checks.py): shown, not refused.
    warnings = [format_error(warning) for warning in wdl.womtool_warnings(loaded)]
    if warnings:
        spec["wdl"]["womtool_warnings"] = warnings
    for line in warnings:
        report(f"Warning: {line}")
    revision, kind = _revision(fetched, bundle, source)
    log = _check_log(spec, source, kind) + "".join(f"Warning: {line}\n" for line in warnings)
    return CheckedWorkflow(spec, bundle, revision, log)


def _check_with_cromwell(
    fetched: FetchedSource,
    source: WdlSource,
    bundle: wdl.Bundle,
    refusal: wdl.WorkflowInvalid,
    report: Progress,
) -> CheckedWorkflow:
    """A document miniwdl refuses: added for Cromwell servers only when an active registered
    one accepts it (its inputs and outputs from that server's describe, miniwdl's refusal shown
    as a warning); else refused with miniwdl's reasons and each server's."""
    miniwdl_says = [format_error(error) for error in refusal.errors]
    verdicts = ask_cromwell_servers(bundle, report)
    if not verdicts.accepted:
        raise _refused_by_all(refusal, verdicts)
    alias, described = next(iter(verdicts.accepted.items()))
    try:
        signature = wdl.signature_from_description(described)
    except wdl.DescriptionUnusable as exc:
        raise IngestionError(
            f"the workflow is invalid: {refusal}; {alias} accepts it, but its inputs and "
            f"outputs can't be an operation's: {exc}",
            code="invalid_workflow",
            details={"workflow": miniwdl_says, "cromwell": [f"{alias}: {p}" for p in exc.problems]},
        ) from None
    warning = (
        f"Warning: miniwdl {_miniwdl_version()} refuses this workflow, which "
        f"{', '.join(verdicts.accepted)} (Cromwell's describe) accepts: "
        f"{'; '.join(miniwdl_says)}. It is added for Cromwell servers only: its jobs run on a "
        "registered Cromwell server, never on miniwdl."
    )
    report(warning)
    spec = _operation_spec(source, signature, bundle, lambda: WDL_DEFAULT_VERSION)
    spec["wdl"]["imports"] = sorted(path for path in bundle.files if path != bundle.main)
    spec["wdl"]["miniwdl_refuses"] = miniwdl_says
    spec["wdl"]["accepted_by"] = sorted(verdicts.accepted)
    report(
        f"Workflow {signature['workflow_name']} (WDL {signature['wdl_version']}, described by "
        f"{alias}): {len(spec['inputs'])} inputs, {len(spec['outputs'])} outputs"
    )
    revision, kind = _revision(fetched, bundle, source)
    others = [f"{line}\n" for line in verdicts.refused + verdicts.unreachable]
    log = _cromwell_check_log(spec, source, kind, warning) + "".join(
        f"Also asked: {line}" for line in others
    )
    return CheckedWorkflow(spec, bundle, revision, log, executors=[CROMWELL_ANY])


def _refused_by_all(refusal: wdl.WorkflowInvalid, verdicts: CromwellVerdicts) -> IngestionError:
    """miniwdl's refusal, with what each Cromwell server said (none registered: as it is)."""
    error = workflow_invalid(refusal)
    if not verdicts.asked_any:
        return error
    cromwell = [f"{line} (refuses it too)" for line in verdicts.refused] + [
        f"{line} (could not be asked)" for line in verdicts.unreachable
    ]
    what = (
        "the registered Cromwell servers refuse it too"
        if not verdicts.unreachable
        else "no registered Cromwell server that answered accepts it; try again when "
        "the others answer"
    )
    error.message = f"{error.message}; {what}: {'; '.join(cromwell)}"
    error.details = {**(error.details or {}), "cromwell": cromwell}
    return error


def _cromwell_check_log(
    checked_spec: Mapping[str, Any], source: WdlSource, revision_kind: str, warning: str
) -> str:
    about = checked_spec["wdl"]
    fields = {
        section: ", ".join(_field_summary(n, f) for n, f in checked_spec[section].items())
        for section in ("inputs", "outputs")
    }
    lines = [
        warning,
        f"Workflow: {about['workflow_name']} (WDL {about['wdl_version']}) in "
        f"{checked_spec['workflow']}, described by {', '.join(about['accepted_by'])}",
        f"Other files (sent as its imports): {', '.join(about['imports']) or 'none'}",
        f"Inputs: {fields['inputs'] or 'none'}",
        f"Outputs: {fields['outputs'] or 'none'}",
        f"Metadata: {source.metadata_file or 'none'}",
        f"Operation: {checked_spec['name']} {checked_spec['version']}",
        f"Revision: {revision_kind}",
    ]
    return "\n".join(lines) + "\n"


def wdl_bundle_dir(name: str, revision: str) -> Path:
    """Where a WDL operation's files are kept: ``$FERRY_VAR_DIR/operations/<name>/<revision>``
    (immutable once written)."""
    return Path(settings.FERRY_VAR_DIR) / WDL_BUNDLES_FOLDER / name / revision


def operation_bundle_dir(operation: Operation) -> Path:
    """The folder holding a WDL operation's files (``spec["workflow"]`` is relative to it)."""
    return wdl_bundle_dir(operation.name, operation.revision)


def _storage_failed(folder: Path, exc: OSError) -> IngestionError:
    return IngestionError(
        f"the workflow's files can't be kept in {folder}: {exc.strerror or exc}",
        code="storage_failed",
        status_code=503,
    )


def store_bundle(bundle: wdl.Bundle, target: Path) -> bool:
    """Write the bundle's files to ``target`` unless it exists; return whether it wrote them.
    They are written to a temporary folder beside it, then renamed: ``target`` is either
    complete or absent."""
    if target.is_dir():
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise _storage_failed(target.parent, exc) from None
    try:
        wdl.write_bundle(bundle, staging)
        staging.chmod(0o755)  # mkdtemp's 0o700 would hide it from other service users
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if target.is_dir():
            return False  # the same revision was being added at the same time: same files
        raise _storage_failed(target.parent, exc) from None
    return True


def _ingest_wdl(
    fetched: FetchedSource, source: WdlSource, *, added_by: Any, report: Progress
) -> tuple[Operation, bool]:
    checked = check_wdl_source(fetched, source, report)
    spec, revision = checked.spec, checked.revision
    name, version = spec["name"], spec["version"]
    report(f"Revision {revision}")
    target = wdl_bundle_dir(name, revision)
    existing = Operation.objects.filter(name=name, revision=revision).first()
    if existing is not None:
        if existing.mode == OperationMode.WDL and store_bundle(checked.bundle, target):
            report(f"Restored its missing workflow files in {target}")
        report(f"{name} {version} at revision {revision[:12]} is already in the catalog")
        return existing, False
    # What the registered Cromwell servers say (a refusal is a warning: miniwdl runs it).
    opinions = (
        []
        if checked.executors  # already described by them: miniwdl refused it
        else cromwell_opinions(checked.bundle, tuple(spec["wdl"]["imports"]), report)
    )
    if store_bundle(checked.bundle, target):
        report(f"Kept the workflow's files in {target}")
    operation, created = _record(
        name=name,
        version=version,
        revision=revision,
        description=spec["description"],
        mode=spec["mode"],
        spec=spec,
        image="",
        source=fetched.source,
        build_log=checked.log + "".join(f"{line}\n" for line in opinions),
        executors=checked.executors,
        added_by=added_by,
    )
    if created:
        report(f"Added {name} {version} ({operation.id})")
    return operation, created


def _record(**fields: Any) -> tuple[Operation, bool]:
    """Create the Operation; when the same name and revision was added meanwhile, that one."""
    try:
        with transaction.atomic():
            return Operation.objects.create(**fields), True
    except IntegrityError:
        # Someone added the same revision while we were working: theirs stands.
        existing = Operation.objects.filter(
            name=fields["name"], revision=fields["revision"]
        ).first()
        if existing is None:
            raise
        return existing, False


# --- the whole thing ------------------------------------------------------------------------------


def ingest_operation(
    source: str,
    *,
    commit: str | None = None,
    added_by: Any = None,
    progress: Progress | None = None,
) -> tuple[Operation, bool]:
    """Add the operation at ``source`` (at ``commit`` for git) to the catalog.

    Returns ``(operation, created)``; ``created`` is False when this name and revision were
    already recorded (nothing is rebuilt then). Raises :class:`IngestionError` or
    :class:`~operations.spec.SpecError`; on error nothing is recorded.
    """
    report: Progress = progress or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="ferry-ingest-") as tmp:
        fetched = fetch_source(source, commit, Path(tmp), report)
        if ferry_spec_name(fetched.folder, fetched.source) is None:
            from .webmev_cromwell import ingest_webmev_cromwell, webmev_cromwell_document

            cromwell_mode = webmev_cromwell_document(fetched.folder)
            if cromwell_mode is not None:  # WebMEV's main.wdl + inputs mapping + docker/
                return ingest_webmev_cromwell(
                    fetched,
                    cromwell_mode,
                    added_by=added_by,
                    report=report,
                )
        wdl_source = find_wdl_source(fetched.folder, shown=fetched.source)
        if wdl_source is not None:
            return _ingest_wdl(fetched, wdl_source, added_by=added_by, report=report)
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
        builder = image_builder(spec["mode"])
        labels = {
            "org.ferry.operation": name,
            "org.ferry.version": version,
            "org.ferry.revision": fetched.revision,
            "org.ferry.source": fetched.source,
        }
        image = operation_image(builder, found, fetched, tag=tag, labels=labels, report=report)

    operation, created = _record(
        name=name,
        version=version,
        revision=fetched.revision,
        description=spec["description"],
        mode=spec["mode"],
        spec=spec,
        image=image.name,
        image_origin=image.origin,
        source=fetched.source,
        build_log=_stored_log(image.log),
        added_by=added_by,
    )
    if created:
        report(f"Added {name} {version} ({operation.id})")
    return operation, created


__all__ = [
    "CheckedWorkflow",
    "IngestionError",
    "SpecError",
    "WdlSource",
    "build_image",
    "check_wdl_source",
    "fetch_source",
    "find_wdl_source",
    "folder_digest",
    "image_tag",
    "ingest_operation",
    "operation_bundle_dir",
    "operation_image",
    "read_spec",
    "store_bundle",
    "wdl_bundle_dir",
    "wdl_operation_name",
    "wdl_revision",
    "webmev_image_names",
    "workflow_bundle",
]
