"""Run operations in sandboxed containers on the local Docker engine.

Configured in ``settings.EXECUTORS``::

    "local-docker": {
        "BACKEND": "executors.docker.DockerExecutor",
        "OPTIONS": {
            "work_root": "/var/lib/ferry/work/docker",   # one work dir per job below it
            "defaults": {"memory_mb": 1024, "cpus": 1.0, "pids": 256, "timeout_s": 3600},
            "ceilings": {"memory_mb": 16384, "cpus": 4.0, "pids": 4096, "timeout_s": 604800},
            # optional: "base_url" ("unix:///run/docker.sock"; default: DOCKER_HOST or the local
            # socket), "user" ("65534:65534"), "tmp_mb" (256), "log_max_mb" (16),
            # "api_timeout_s" (60)
        },
    }

One job is one container named ``ferry-job-<job id>`` with the labels ``ferry.job``,
``ferry.executor`` (the alias), ``ferry.deadline`` (unix time), ``ferry.timeout_s`` and
``ferry.attempt`` (``job.attempts + 1`` when it was created: a container of an earlier attempt
is removed when the job is submitted again, any other is adopted). It runs
``["/bin/sh", "-c", run_spec["command"]]`` in ``/work`` with no network, as an unprivileged user,
with a read-only root file system, a small ``/tmp``, no capabilities, no new privileges, and memory
(no swap), CPU and process limits. Images are never pulled: an operation's image is built on this
engine when the operation is added.

No network, said twice: ``HostConfig.NetworkMode`` "none" and ``Config.NetworkDisabled``. With
the second the engine leaves networking out of the container's start (no libnetwork sandbox,
no ``libnetwork-setkey`` prestart hook: a re-exec of the whole dockerd binary per container,
measured here at about half the machine's CPU for a container that runs ``true``); the run
still gets a network namespace of its own, holding only ``lo``. The first stays, so an engine
that ignored the second would still give no network. The engine then writes no /etc/hosts (nor
resolv.conf: with no network a lookup now fails at once), so Ferry mounts its own, read-only,
with what the engine writes for a container without a network plus the run's host name.

The work dir on the host, per job::

    <work_root>/<job id>/          mounted read-write at /work; mode 1777 and owned by Ferry, so the
                                   container user can create files but can't remove .ferry
    <work_root>/<job id>/.ferry/   Ferry's own files (the container can read but not write them):
        timed_out                  written by poll() when it kills a run past its deadline
        state.json                 the container's outcome, saved by collect()
        stdout.log, stderr.log     the container's logs, saved by collect()
        hosts                      the run's /etc/hosts (read-only)

Saving the outcome and the logs lets ``collect()`` and ``logs()`` still answer after
``cleanup()`` removed the container; ``remove_workdir()`` deletes the work dir once the caller
has stored the outputs.

An engine restart stops every running container (SIGTERM, then SIGKILL after its stop timeout;
after a crash, the restarted engine kills what the old one ran). ``collect()`` recognises such
a run — killed by SIGKILL or SIGTERM, not out of memory or past its deadline, and finished before
the engine last started — and reports it as stopped by the engine restarting
(``Collected.engine_restarted``), not as the exit status 137 it shows. The engine's start time is
when it created its default ``bridge`` network, which it recreates on every start (unless it
keeps containers running across restarts, ``live-restore``, when no run is stopped by one).

WebMEV's run contract (``run_spec["contract"] == "webmev"``, for operations converted from
WebMEV; see docs/webmev.md): the inputs listed in ``run_spec["mounts"]`` are copied into the work
dir (their ``target`` is a path directly inside it), and the work dir is mounted read-write at
its own host path, not at /work, so the absolute paths in the command and in outputs.json are
the same on both sides; the run is ``run_spec["argv"]`` after the image's own ENTRYPOINT, in the
image's WORKDIR (no ``/bin/sh -c``), with ``WORKDIR=<work dir>`` in its environment. The rest of
the sandbox is the same. outputs.json is read from the work dir; ``run_spec["webmev_outputs"]``
says which outputs are files and how WebMEV gives them (a path; ``{"path", "resource_type"}``
with one of the declared types; a list of those), and any other shape fails the run naming
the output.

Outputs: a run that exits 0 must write ``/work/outputs.json``, a JSON object mapping output names
to values. ``collect()`` returns that object as ``Collected.values`` and, in ``Collected.files``,
the host paths of every string (or list of strings) in it that names a regular file inside
``/work`` — relative to ``/work`` or absolute under it, symlinks followed as the container would
follow them, never leaving ``/work``. The caller decides from the operation's spec which outputs
are files. Outputs listed in the optional ``run_spec["file_outputs"]`` (a list of output names)
are checked here: one that doesn't name such a file fails the run with a readable message
("output 'summary' names summary.json, which the operation did not write").
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

import docker
import docker.errors
import docker.types
import requests

from .base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    ImageBuild,
    Observation,
    RunnableJob,
    RunState,
    check_local_options,
    connection_problem,
)
from .docker_events import ExitWatch
from .images import build_client, build_local_image, local_image_labels

LABEL_JOB = "ferry.job"
INSPECT_AT_MOST = 4  # a poll of at most this many runs inspects each; more: one listing
# A poll's inspection of an exited container (final: Ferry never restarts one) serves the
# collect that follows it in the same pass, instead of a second inspect; kept this long.
SEEN_EXITED_S = 10.0
SEEN_EXITED_MAX = 256
LABEL_EXECUTOR = "ferry.executor"
LABEL_DEADLINE = "ferry.deadline"
LABEL_TIMEOUT = "ferry.timeout_s"
LABEL_ATTEMPT = "ferry.attempt"

WORK = "/work"  # the work dir inside the container
OUTPUTS_JSON = "outputs.json"
META_DIR = ".ferry"
TIMED_OUT = "timed_out"
STATE_JSON = "state.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
HOSTS = "hosts"  # .ferry/hosts, the run's /etc/hosts (see _hosts_mount)
HOSTNAME = "ferry-job"
# What the engine writes for a container without a network (NetworkDisabled leaves it out),
# and the run's host name: "localhost" resolves (R's parallel, multiprocessing managers...).
HOSTS_TEXT = (
    f"127.0.0.1\tlocalhost {HOSTNAME}\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

TAIL_LINES = 200
TAIL_BYTES = 64 * 1024
MESSAGE_LINES = 5  # stderr lines quoted in a user-facing error message
MAX_OUTPUTS_JSON_BYTES = 1024 * 1024
MAX_SYMLINK_HOPS = 40

DEFAULT_USER = "65534:65534"
DEFAULT_TMP_MB = 256
DEFAULT_LOG_MAX_MB = 16
DEFAULT_API_TIMEOUT_S = 60
# How an engine's shutdown ends a run: SIGTERM (128 + 15) if it stops on it, else SIGKILL.
STOP_SIGNAL_EXITS = (128 + 9, 128 + 15)
ENGINE_RESTARTED = (
    "The Docker engine restarted while the job ran (its container was stopped); run it again."
)

# Limit name -> (type, smallest allowed value). Docker refuses memory limits under 6 MiB.
LIMITS: dict[str, tuple[type, float]] = {
    "memory_mb": (int, 6),
    "cpus": (float, 0.01),
    "pids": (int, 1),
    "timeout_s": (int, 1),
}
TMP = "/tmp"  # noqa: S108 (inside the container: a private tmpfs)
FORBIDDEN_MOUNT_TARGETS = ("/", TMP, "/proc", "/sys", "/dev", "/etc")
# Inputs are mounted outside /work: Docker would create their mount points in the work dir as
# root, where Ferry (when it isn't root) could not remove them.
FORBIDDEN_MOUNT_PREFIXES = (WORK, "/proc", "/sys", "/dev")


def run_state(docker_state: str) -> RunState:
    """Map a Docker container state (``docker ps`` / inspect ``State.Status``) to a RunState."""
    if docker_state == "created":
        return RunState.PENDING
    if docker_state in ("running", "restarting", "paused"):
        return RunState.RUNNING
    if docker_state in ("exited", "dead", "removing"):
        return RunState.EXITED
    return RunState.MISSING


def container_name(job: RunnableJob) -> str:
    return f"ferry-job-{job.id}"


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float
    pids: int
    timeout_s: int


@dataclass(frozen=True)
class Outcome:
    """What a finished container left: saved in .ferry/state.json so it outlives the container."""

    exit_code: int
    oom_killed: bool
    memory_bytes: int
    timeout_s: int
    timed_out: bool
    pids_limit: int = 0  # absent from state files saved before it was recorded
    engine_restarted: bool = False  # stopped by the engine restarting (see the module's doc)


# What programs write when fork/clone/pthread_create fails with EAGAIN, as it does at the
# container's pids limit (busybox/dash/bash, Python, the JVM, glibc and Go runtimes).
_PROCESS_LIMIT_STDERR = re.compile(
    r"can't fork|cannot fork|fork: retry|fork failed|fork: Resource temporarily unavailable"
    r"|can't start new thread|unable to create (new )?native thread|pthread_create failed"
    r"|BlockingIOError: \[Errno 11\]",
    re.IGNORECASE,
)


def _could_not_start_a_process(stderr: str) -> bool:
    return _PROCESS_LIMIT_STDERR.search(stderr) is not None


class OutputPathError(Exception):
    """A string in outputs.json doesn't name a regular file inside /work; ``kind`` says why."""

    def __init__(self, kind: str) -> None:  # "missing", "outside", "not_file" or "invalid"
        super().__init__(kind)
        self.kind = kind


def _container_parts(ref: str, root: list[str]) -> list[str]:
    """The components of the container path ``ref`` names, below "/" (relative: below the
    mount point, whose components are ``root``)."""
    if not isinstance(ref, str) or not ref or "\x00" in ref:
        raise OutputPathError("invalid")
    path = PurePosixPath(ref)
    return list(path.parts[1:]) if path.is_absolute() else [*root, *path.parts]


def _host_lstat(host: Path) -> os.stat_result:
    try:
        return os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise OutputPathError("missing") from None
    except OSError:
        raise OutputPathError("invalid") from None


def _moved_by_dots(part: str, current: list[str]) -> bool:
    """Apply ``.``/``..`` (and empty parts) to the walked ``current``; False for a name."""
    if part in ("", "."):
        return True
    if part == "..":
        if current:
            current.pop()
        return True
    return False


def _check_inside_mount(current: list[str], root: list[str]) -> None:
    depth = len(root)
    if current[:depth] != root[: len(current)] or (
        len(current) > depth and current[depth] == META_DIR
    ):
        raise OutputPathError("outside")


def _follow_link(host: Path, current: list[str], pending: list[str]) -> tuple[list[str], list[str]]:
    """(walked, still to walk) once the symlink ``host`` (the last of ``current``) is read: an
    absolute target is a container path, walked from "/"."""
    target = PurePosixPath(os.readlink(host))
    current.pop()
    if target.is_absolute():
        return [], [*target.parts[1:], *pending]
    return current, [*target.parts, *pending]


def _walk_container_path(workdir: Path, pending: list[str], root: list[str]) -> list[str]:
    """The components of the container path reached from ``pending``, following symlinks one
    component at a time; every step must stay inside the mount point (components ``root``)."""
    current: list[str] = []  # components of the container path walked so far, below "/"
    depth = len(root)
    hops = 0
    while pending:
        part = pending.pop(0)
        if _moved_by_dots(part, current):
            continue
        current.append(part)
        _check_inside_mount(current, root)
        if len(current) <= depth:
            continue  # the mount point or a directory above it
        host = workdir.joinpath(*current[depth:])
        st = _host_lstat(host)
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OutputPathError("outside")
            current, pending = _follow_link(host, current, pending)
        elif pending and not stat.S_ISDIR(st.st_mode):
            raise OutputPathError("missing")
    return current


def resolve_output_path(workdir: Path, ref: str, mount_point: str = WORK) -> Path:
    """The host path of the regular file ``ref`` names inside the container's /work (or the
    ``mount_point`` the work dir is mounted at: a WebMEV run's execution dir).

    ``ref`` is relative to the mount point or absolute under it. Symlinks are followed the way
    the container would follow them (an absolute target is a container path), one component at
    a time, and every step must stay inside the mount point: anything else in the container's
    file system is out of reach. Raises OutputPathError.
    """
    root = list(PurePosixPath(mount_point).parts[1:])
    depth = len(root)
    current = _walk_container_path(workdir, _container_parts(ref, root), root)
    if current[:depth] != root:
        raise OutputPathError("outside")
    if len(current) == depth:
        raise OutputPathError("not_file")
    final = workdir.joinpath(*current[depth:])
    if not stat.S_ISREG(os.lstat(final).st_mode):
        raise OutputPathError("not_file")
    return final


def _failure_headline(outcome: Outcome, stderr_tail: str) -> str:
    """Why a run that exited non-zero failed, first of all: its time or memory limit, its
    process limit, or just its exit status."""
    if outcome.timed_out:
        return f"timed out after {outcome.timeout_s} s"
    if outcome.oom_killed:
        return f"ran out of memory (limit {outcome.memory_bytes // (1024 * 1024)} MiB)"
    if outcome.pids_limit > 0 and _could_not_start_a_process(stderr_tail):
        return (
            f"stopped by its process limit (pids_limit={outcome.pids_limit}): it could not "
            f"start another process or thread, and exited with status {outcome.exit_code}"
        )
    return f"exited with status {outcome.exit_code}"


OUTPUTS_JSON_IN_WORK = f"{WORK}/{OUTPUTS_JSON}"


def _outputs_json_path(
    workdir: Path, run_spec: dict[str, Any], mount_point: str = WORK
) -> Path | None:
    """The host path of the run's outputs.json; None when it wrote none and needs none."""
    where = f"{mount_point}/{OUTPUTS_JSON}"
    try:
        return resolve_output_path(workdir, OUTPUTS_JSON, mount_point)
    except OutputPathError as exc:
        if exc.kind != "missing":
            raise ExecutorError(f"{where} is not a regular file inside {mount_point}") from None
        if not run_spec.get("requires_outputs_json", True):
            return None
        raise ExecutorError(f"the operation finished without writing {where}") from None


def _read_outputs_json(path: Path, where: str = OUTPUTS_JSON_IN_WORK) -> dict[str, Any]:
    if path.stat().st_size > MAX_OUTPUTS_JSON_BYTES:
        raise ExecutorError(f"{where} is larger than {MAX_OUTPUTS_JSON_BYTES // 1024} KiB")
    try:
        values = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise ExecutorError(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ExecutorError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(values, dict):
        raise ExecutorError(
            f"{where} must hold a JSON object mapping output names to values, "
            f"not {type(values).__name__}"
        )
    return values


def _output_files(
    workdir: Path, values: dict[str, Any], declared: set[str]
) -> dict[str, list[Path]]:
    """The files the output values name inside /work; a ``declared`` file output that names no
    file (or a bad one) is an ExecutorError, other values are files only if they name one."""
    files: dict[str, list[Path]] = {}
    for name, value in values.items():
        refs = _strings(value)
        if name in declared and refs is None:
            raise ExecutorError(
                f"output {name!r} should name a file in {WORK}, not {json.dumps(value)[:100]}"
            )
        found = []
        for ref in refs or ():
            try:
                found.append(resolve_output_path(workdir, ref))
            except OutputPathError as exc:
                if name in declared:
                    raise ExecutorError(_path_problem(name, ref, exc.kind)) from None
        if found:
            files[name] = found
    return files


def _tail(data: str, lines: int = TAIL_LINES) -> str:
    return "".join(data.splitlines(keepends=True)[-lines:])


def _read_tail(path: Path, max_bytes: int = TAIL_BYTES, lines: int | None = TAIL_LINES) -> str:
    """The end of a log file: at most ``max_bytes`` bytes, then at most ``lines`` lines."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if max_bytes and size > max_bytes:
                fh.seek(size - max_bytes)
                fh.readline()  # drop the partial first line
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return text if lines is None else _tail(text, lines)


def _last_lines(text: str, count: int = MESSAGE_LINES, width: int = 300) -> str:
    lines = [line[:width] for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def _write_private(path: Path, data: bytes) -> None:
    """Write a file of Ferry's in .ferry atomically, never following a symlink."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def api_error(
    exc: docker.errors.APIError, action: str, *, server_errors_retry: bool
) -> ExecutorError:
    """What the Docker engine's refusal means: an error of the run (a 4xx, or any answer when
    ``server_errors_retry`` is False), or ExecutorUnavailable for its own failure (a 5xx)."""
    message = f"the Docker engine failed to {action}: {exc.explanation}"
    if server_errors_retry and exc.is_server_error():
        return ExecutorUnavailable(message)
    return ExecutorError(message)


def _image_and_how(spec: dict[str, Any], exec_dir: str) -> tuple[str, dict[str, Any], bool]:
    """(image, how the container runs it, whether it is a WebMEV run) from a run spec.

    Ferry's runs are ``/bin/sh -c <command>`` in /work; a WebMEV run is ``docker run <image>
    <words>`` as WebMEV runs it: the image's ENTRYPOINT and WORKDIR stay."""
    image = spec.get("image")
    if not isinstance(image, str) or not image:
        raise ExecutorError("the run has no image")
    if _is_webmev(spec):
        argv = spec.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ExecutorError("the run has no argv (a list of words)")
        if spec.get("exec_dir") != exec_dir:
            raise ExecutorError(
                f"the run was prepared for the work dir {spec.get('exec_dir')!r}, not this "
                f"executor's {exec_dir!r}: run the job again"
            )
        return image, {"command": argv}, True
    command = spec.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ExecutorError("the run has no command")
    how = {"entrypoint": ["/bin/sh", "-c"], "command": [command], "working_dir": WORK}
    return image, how, False


def _image_missing(image: str) -> ExecutorError:
    return ExecutorError(
        f"image {image} is not available on this Docker engine; "
        "add the operation again to rebuild it"
    )


def _hosts_mount(workdir: Path) -> Any:
    """The run's /etc/hosts, read-only: the engine writes none for a container created with
    NetworkDisabled (no network set-up at all), so Ferry gives what it would have written."""
    return docker.types.Mount(
        target="/etc/hosts", source=str(workdir / META_DIR / HOSTS), type="bind", read_only=True
    )


def _input_groups(input_mounts: list[Any]) -> set[int]:
    """The groups owning the input files. Stored files are 0640 (api.private_paths): the run
    joins these groups to read them, as the unprivileged user it still is."""
    groups = set()
    for mount in input_mounts:
        try:
            groups.add(os.stat(mount["Source"]).st_gid)
        except OSError:
            raise ExecutorError(
                f"the input file for {mount['Target']} is missing on this server"
            ) from None
    return groups


class DockerExecutor(Executor):
    modes = ("docker",)
    engine_name = "The Docker engine"
    backend_errors = (OSError, docker.errors.DockerException)
    builds_images = True  # into this engine's image store, where its runs find them
    waits_for_exits = True  # follows the engine's events (die, oom) of its containers

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        super().__init__(alias, options)
        problems = self.check_options(options)
        if problems:
            raise ExecutorError(f"executor {alias!r} is misconfigured: {'; '.join(problems)}")
        self.work_root = Path(options["work_root"])
        self.defaults: dict[str, Any] = dict(options.get("defaults") or {})
        self.ceilings: dict[str, Any] = dict(options.get("ceilings") or {})
        self.user = str(options.get("user", DEFAULT_USER))
        self.tmp_mb = int(options.get("tmp_mb", DEFAULT_TMP_MB))
        self.log_max_mb = int(options.get("log_max_mb", DEFAULT_LOG_MAX_MB))
        self.api_timeout_s = int(options.get("api_timeout_s", DEFAULT_API_TIMEOUT_S))
        self.base_url: str | None = options.get("base_url") or None
        self._docker: Any = None
        self._docker_pid = 0
        self._lock = threading.Lock()
        self._seen_exited: dict[str, tuple[float, Any]] = {}  # container name -> (when, it)
        self._exits = ExitWatch(
            self._new_client, {LABEL_EXECUTOR: alias}, LABEL_JOB, deadline_label=LABEL_DEADLINE
        )

    # -- configuration ------------------------------------------------------------------------

    @classmethod
    def check_options(cls, options: Any) -> list[str]:
        """Problems with an OPTIONS dict, as sentences (used by the system check too)."""
        if not isinstance(options, dict):
            return ["OPTIONS must be a dict"]
        problems = check_local_options(options, {k: v[1] for k, v in LIMITS.items()})
        defaults, ceilings = options.get("defaults") or {}, options.get("ceilings") or {}
        if isinstance(defaults, dict) and isinstance(ceilings, dict):
            for key in LIMITS:
                if key not in defaults:
                    problems.append(f"OPTIONS['defaults'] needs a value for {key!r}")
                elif (
                    _is_number(defaults[key])
                    and _is_number(ceilings.get(key))
                    and defaults[key] > ceilings[key]
                ):
                    problems.append(f"the default {key} is above its ceiling")
        return problems

    def limits_for(self, run_spec: dict[str, Any]) -> Limits:
        """The defaults overridden by the run's own limits, each checked against its ceiling."""
        asked = run_spec.get("limits") or {}
        if not isinstance(asked, dict):
            raise ExecutorError("the run's limits must be a mapping")
        unknown = sorted(set(asked) - set(LIMITS))
        if unknown:
            raise ExecutorError(
                f"unknown resource limit {unknown[0]!r} (this server knows {', '.join(LIMITS)})"
            )
        values: dict[str, Any] = {}
        for key, (kind, minimum) in LIMITS.items():
            value: Any = asked.get(key, self.defaults.get(key))
            if not _is_number(value):
                raise ExecutorError(f"the resource limit {key} must be a number, not {value!r}")
            if kind is int:
                if value != int(value):
                    raise ExecutorError(f"the resource limit {key} must be a whole number")
                value = int(value)
            else:
                value = float(value)
            if value < minimum:
                raise ExecutorError(
                    f"the resource limit {key}={value} is below the minimum {minimum}"
                )
            ceiling = self.ceilings.get(key)
            if ceiling is not None and value > ceiling:
                raise ExecutorError(
                    f"the operation asks for {key}={value}, above this server's ceiling of {ceiling}"
                )
            values[key] = value
        return Limits(**values)

    # -- the engine ---------------------------------------------------------------------------

    def _client(self) -> Any:
        """The Docker client, created on first use (and again in a forked child process)."""
        with self._lock:
            if self._docker is None or self._docker_pid != os.getpid():
                try:
                    client = self._new_client()
                except docker.errors.DockerException as exc:
                    raise ExecutorUnavailable(
                        f"the Docker engine can't be reached: {connection_problem(exc)}"
                    ) from exc
                self._docker, self._docker_pid = client, os.getpid()
            return self._docker

    def _new_client(self) -> Any:
        if self.base_url:
            return docker.DockerClient(base_url=self.base_url, timeout=self.api_timeout_s)
        return docker.from_env(timeout=self.api_timeout_s)

    def _wait_for_exits(self, timeout: float) -> set[UUID]:
        return self._exits.wait(timeout)

    def stop_waiting(self) -> None:
        """Stop following the engine's events (a later wait starts again)."""
        self._exits.stop()

    def wake_waiter(self) -> None:
        self._exits.wake()

    @contextlib.contextmanager
    def _engine(self, action: str, *, server_errors_retry: bool = False) -> Iterator[None]:
        """Turn Docker failures into ExecutorUnavailable (try again later) or ExecutorError."""
        try:
            yield
        except docker.errors.APIError as exc:
            raise api_error(exc, action, server_errors_retry=server_errors_retry) from exc
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise self.translate_error(exc, action) from exc

    def translate_error(self, exc: BaseException, action: str) -> ExecutorError:
        if isinstance(exc, docker.errors.APIError):
            return api_error(exc, action, server_errors_retry=True)
        return super().translate_error(exc, action)

    def build_image(self, build: ImageBuild) -> str:
        return build_local_image(build_client(self.base_url), build)

    def image_labels(self, tag: str) -> dict[str, str] | None:
        return local_image_labels(build_client(self.base_url), tag)

    def ping(self) -> str:
        """The engine's version if it answers (for health checks); ExecutorUnavailable if not."""
        with self._engine("answer", server_errors_retry=True):
            version = self._client().version()
        return f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"

    def _container(self, job: RunnableJob) -> Any:
        """The job's container, or None."""
        try:
            return self._client().containers.get(container_name(job))
        except docker.errors.NotFound:
            return None

    # -- work dirs ----------------------------------------------------------------------------

    def workdir(self, job: RunnableJob) -> Path:
        return self.workdir_for(job.id)

    def workdir_for(self, job_id: Any) -> Path:
        """The work dir of job ``job_id`` (a WebMEV run's execution dir: see the module's doc)."""
        return self.work_root / str(UUID(str(job_id)))

    def _meta_dir(self, job: RunnableJob) -> Path | None:
        """<workdir>/.ferry if it is a real directory (never a symlink), else None."""
        meta = self.workdir(job) / META_DIR
        try:
            st = os.lstat(meta)
        except FileNotFoundError:
            return None
        return meta if stat.S_ISDIR(st.st_mode) else None

    def _prepare_workdir(self, job: RunnableJob) -> Path:
        os.makedirs(self.work_root, mode=0o700, exist_ok=True)
        workdir = self.workdir(job)
        workdir.mkdir(exist_ok=True)
        # World-writable and sticky: the container user (any uid) can create files in /work but
        # can't rename or remove the entries Ferry owns there (.ferry).
        os.chmod(workdir, 0o1777)  # noqa: S103
        meta = workdir / META_DIR
        meta.mkdir(exist_ok=True)
        if os.path.islink(meta) or not meta.is_dir():
            raise ExecutorError("the job's work dir is in an unexpected state")
        os.chmod(meta, 0o755)  # noqa: S103 (the container may read it, not write)
        hosts = meta / HOSTS
        hosts.unlink(missing_ok=True)  # (a run of an earlier attempt's, or anything else)
        hosts.write_text(HOSTS_TEXT)
        os.chmod(hosts, 0o644)  # (whatever Ferry's umask: the run's user reads it)
        return workdir

    def remove_workdir(self, job: RunnableJob) -> None:
        """Delete the job's work dir (after the caller stored its outputs); idempotent."""
        workdir = self.workdir(job)
        if not os.path.lexists(workdir):
            return
        try:
            shutil.rmtree(workdir)
            return
        except PermissionError:
            # Ferry isn't root: what the container user wrote inside its own directories is
            # only removable by that user. Let a container running as that user do it.
            self._remove_as_run_user(job)
        try:
            shutil.rmtree(workdir)
        except OSError as exc:
            raise ExecutorError(f"could not remove the work dir of job {job.id}: {exc}") from exc

    def _remove_as_run_user(self, job: RunnableJob) -> None:
        image = (job.run_spec or {}).get("image")
        if not image:
            return
        client = self._client()
        with self._engine("clean up the work dir"):
            helper = client.containers.create(
                image=image,
                entrypoint=["/bin/sh", "-c"],
                command=[
                    "set -- /work/* /work/.[!.]* /work/..?*; "
                    'chmod -R u+rwX "$@" 2>/dev/null; rm -rf "$@" 2>/dev/null; true'
                ],
                user=self.user,
                network_mode="none",
                network_disabled=True,
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                labels={LABEL_EXECUTOR: f"{self.alias}-cleanup"},
                mounts=[
                    docker.types.Mount(
                        target=WORK, source=str(self.workdir(job)), type="bind", read_only=False
                    )
                ],
            )
            try:
                helper.start()
                helper.wait(timeout=120)
            finally:
                helper.remove(force=True)

    # -- the run --------------------------------------------------------------------------------

    def _mounts(self, run_spec: dict[str, Any], workdir: Path) -> list[Any]:
        mounts = [docker.types.Mount(target=WORK, source=str(workdir), type="bind")]
        targets = set()
        for entry in run_spec.get("mounts") or []:
            if not isinstance(entry, dict):
                raise ExecutorError("each mount must be a mapping with a source and a target")
            source, target = entry.get("source"), entry.get("target")
            if not isinstance(target, str) or not target.startswith("/"):
                raise ExecutorError(f"mount target {target!r} must be an absolute path")
            norm = os.path.normpath(target)
            if (
                norm != target.rstrip("/")
                or norm in FORBIDDEN_MOUNT_TARGETS
                or any(norm == p or norm.startswith(f"{p}/") for p in FORBIDDEN_MOUNT_PREFIXES)
            ):
                raise ExecutorError(f"an input can't be mounted at {target}")
            if norm in targets:
                raise ExecutorError(f"two inputs are mounted at {target}")
            targets.add(norm)
            if not isinstance(source, str) or not os.path.isabs(source):
                raise ExecutorError(f"the input for {target} has no absolute source path")
            if not os.path.exists(source):
                raise ExecutorError(f"the input file for {target} is missing on this server")
            mounts.append(
                docker.types.Mount(target=norm, source=source, type="bind", read_only=True)
            )
        return mounts

    def _webmev_mounts(self, run_spec: dict[str, Any], workdir: Path) -> list[Any]:
        """WebMEV's placement: the inputs copied into the execution dir (the work dir), which is
        mounted read-write at its own path: host path == container path."""
        target = str(workdir)
        if any(
            target == p or target.startswith(f"{p}/") for p in ("/proc", "/sys", "/dev", "/etc")
        ):
            raise ExecutorError(f"the work dir {target} can't be mounted at its own path")
        for entry in run_spec.get("mounts") or []:
            if not isinstance(entry, dict):
                raise ExecutorError("each input must be a mapping with a source and a target")
            source, copy_to = entry.get("source"), entry.get("target")
            if (
                not isinstance(copy_to, str)
                or os.path.dirname(copy_to) != target
                or os.path.basename(copy_to) in ("", ".", "..", META_DIR, OUTPUTS_JSON)
            ):
                raise ExecutorError(f"an input can't be placed at {copy_to!r}")
            if not isinstance(source, str) or not os.path.isabs(source):
                raise ExecutorError(f"the input for {copy_to} has no absolute source path")
            if not os.path.isfile(source):
                raise ExecutorError(f"the input file for {copy_to} is missing on this server")
            try:
                _copy_private(Path(source), Path(copy_to))
            except OSError as exc:
                raise ExecutorError(
                    f"could not copy an input into the job's work dir: {exc}"
                ) from exc
        return [docker.types.Mount(target=target, source=target, type="bind", read_only=False)]

    def _submit(self, job: RunnableJob) -> str:
        """Create and start the job's container in two engine calls. The create is what tells
        whether the job was submitted before (409: its name is taken), so nothing is looked up
        first; only a WebMEV run, whose inputs are copied into its work dir, looks first (a
        run of the same attempt may be using them)."""
        spec = job.run_spec or {}
        image, how, webmev = _image_and_how(spec, str(self.workdir(job)))
        limits = self.limits_for(spec)
        with self._engine("start the run"):
            if webmev:
                existing = self._container(job)
                if existing is not None and not _of_earlier_attempt(existing, _attempt(job)):
                    return self._started(existing)
            try:
                workdir = self._prepare_workdir(job)
            except OSError as exc:
                raise ExecutorError(f"could not prepare the job's work dir: {exc}") from exc
            mounts = self._webmev_mounts(spec, workdir) if webmev else self._mounts(spec, workdir)
            environment = {"HOME": TMP, "TMPDIR": TMP}
            if webmev:
                # Scripts find their execution dir from their inputs' paths or $WORKDIR.
                environment["WORKDIR"] = str(workdir)
            for _ in range(3):
                try:
                    container_id = self._create_container(
                        job, image, how, environment, limits, mounts
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                    existing = self._container(job)  # submitted before, perhaps just now
                    if existing is None:
                        continue  # removed meanwhile: create it again
                    if not _of_earlier_attempt(existing, _attempt(job)):
                        return self._started(existing)
                    # The job runs again (its engine restarted under it): a fresh container.
                    self._forget_earlier_attempt(job, existing)
                    continue
                return self._start(container_id)
            raise ExecutorUnavailable("the job's container was replaced while it was created")

    def _create_container(
        self,
        job: RunnableJob,
        image: str,
        how: dict[str, Any],
        environment: dict[str, str],
        limits: Limits,
        mounts: list[Any],
    ) -> str:
        """The id of the job's container, created (not started) with its limits and mounts;
        through the engine's API directly (the SDK's models would inspect it afterwards)."""
        memory = limits.memory_mb * 1024 * 1024
        input_groups = _input_groups(mounts[1:])
        if not any(m["Target"] == "/etc/hosts" for m in mounts):  # (an input there wins)
            mounts = [*mounts, _hosts_mount(self.workdir(job))]
        api = self._client().api
        host_config = api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={TMP: f"rw,exec,nosuid,nodev,size={self.tmp_mb}m,mode=1777"},
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            group_add=[str(gid) for gid in sorted(input_groups)] or None,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mounts=mounts,
            log_config=docker.types.LogConfig(
                type="json-file",
                config={"max-size": f"{self.log_max_mb}m", "max-file": "1"},
            ),
        )
        try:
            created = api.create_container(
                image=image,
                **how,
                name=container_name(job),
                labels={
                    LABEL_JOB: str(job.id),
                    LABEL_EXECUTOR: self.alias,
                    LABEL_DEADLINE: str(math.ceil(time.time()) + limits.timeout_s),
                    LABEL_TIMEOUT: str(limits.timeout_s),
                    LABEL_ATTEMPT: str(_attempt(job)),
                },
                user=self.user,
                environment=environment,
                hostname=HOSTNAME,
                # No network twice over (see the module's docstring): the engine then skips
                # its network set-up, a re-exec of dockerd for each container.
                network_disabled=True,
                host_config=host_config,
            )
        except docker.errors.ImageNotFound:
            raise _image_missing(image) from None
        return str(created["Id"])

    def _start(self, container_id: str) -> str:
        """Start a container just created; one that can't start is removed so a retry starts
        afresh."""
        api = self._client().api
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(container_id, force=True)
            raise ExecutorError(f"the container could not start: {exc.explanation}") from exc
        return container_id

    def _forget_earlier_attempt(self, job: RunnableJob, container: Any) -> None:
        """Remove the container of an earlier attempt (the job runs again: its engine restarted
        under it) and what Ferry saved of it, which would otherwise describe the new run."""
        try:
            self._client().api.remove_container(container.id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise
        meta = self._meta_dir(job)
        if meta is not None:
            for name in (TIMED_OUT, STATE_JSON, STDOUT_LOG, STDERR_LOG):
                with contextlib.suppress(FileNotFoundError):
                    (meta / name).unlink()

    def _started(self, container: Any) -> str:
        """Start a created container; one that can't start is removed so a retry starts afresh."""
        if container.status == "created":
            try:
                container.start()
            except docker.errors.APIError as exc:
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
                raise ExecutorError(f"the container could not start: {exc.explanation}") from exc
        return str(container.id)

    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        """A few runs (those an exit event told of, watched ones) are inspected one by one;
        more are found in one listing of every container of this executor: the work grows with
        the runs asked about, not with every container the engine holds."""
        wanted = {str(job.id): job for job in jobs}
        with self._engine("list runs", server_errors_retry=True):
            few = len(jobs) <= INSPECT_AT_MOST
            found = self._inspected(jobs) if few else self._listed(wanted)
        now = time.time()
        observed: dict[UUID, Observation] = {}
        for key, job in wanted.items():
            container = found.get(key)
            if container is None:
                observed[job.id] = Observation(RunState.MISSING, "no container")
                continue
            status, detail, labels, created = _container_summary(container.attrs)
            state = run_state(status)
            if few and state is RunState.EXITED:
                self._keep_exited(job, container)
            deadline = _int_or_none(labels.get(LABEL_DEADLINE))
            if state is RunState.RUNNING and deadline is not None and now > deadline:
                observed[job.id] = self._time_out(job, container, labels)
            else:
                observed[job.id] = Observation(state, detail, started_at=created)
        return observed

    def _keep_exited(self, job: RunnableJob, container: Any) -> None:
        with self._lock:
            if len(self._seen_exited) >= SEEN_EXITED_MAX:
                self._seen_exited.clear()
            self._seen_exited[container_name(job)] = (time.monotonic(), container)

    def _exited_container(self, job: RunnableJob) -> Any:
        """The job's container as a poll just inspected it exited, or as the engine says now."""
        with self._lock:
            seen = self._seen_exited.pop(container_name(job), None)
        if seen is not None and time.monotonic() - seen[0] < SEEN_EXITED_S:
            return seen[1]
        return self._container(job)

    def _listed(self, wanted: dict[str, RunnableJob]) -> dict[str, Any]:
        listed = self._client().containers.list(
            all=True, sparse=True, filters={"label": f"{LABEL_EXECUTOR}={self.alias}"}
        )
        found = {}
        for container in listed:
            job_id = (container.attrs.get("Labels") or {}).get(LABEL_JOB)
            if job_id in wanted:
                found[job_id] = container
        return found

    def _inspected(self, jobs: Sequence[RunnableJob]) -> dict[str, Any]:
        found = {}
        for job in jobs:
            try:
                container = self._client().containers.get(container_name(job))
            except docker.errors.NotFound:
                continue
            labels = (container.attrs.get("Config") or {}).get("Labels") or {}
            if labels.get(LABEL_EXECUTOR) == self.alias and labels.get(LABEL_JOB) == str(job.id):
                found[str(job.id)] = container
        return found

    def _time_out(self, job: RunnableJob, container: Any, labels: dict[str, str]) -> Observation:
        """Kill a run past its deadline, leaving a marker for collect()."""
        timeout_s = labels.get(LABEL_TIMEOUT, "?")
        meta = self._meta_dir(job)
        if meta is not None:
            with contextlib.suppress(OSError):  # without it, collect() reports the exit status
                _write_private(meta / TIMED_OUT, f"{timeout_s}\n".encode())
        with self._engine("stop a run past its deadline", server_errors_retry=True):
            try:
                container.kill()
            except docker.errors.NotFound:
                return Observation(RunState.MISSING, "no container")
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: not running any more
                    raise
            with contextlib.suppress(requests.exceptions.RequestException):
                container.wait(timeout=10)
        return Observation(RunState.EXITED, f"timed out after {timeout_s} s")

    def _cancel(self, job: RunnableJob) -> None:
        self._remove_container(job, "cancel the run")

    def _cleanup(self, job: RunnableJob) -> None:
        """Remove the container; the work dir stays until remove_workdir()."""
        self._remove_container(job, "remove the run's container")

    def _remove_container(self, job: RunnableJob, action: str) -> None:
        with self._engine(action, server_errors_retry=True):
            try:
                self._client().api.remove_container(container_name(job), force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: removal already in progress
                    raise

    # -- outcome --------------------------------------------------------------------------------

    def _save_from_container(self, job: RunnableJob, container: Any) -> Outcome:
        state = container.attrs.get("State") or {}
        if state.get("Status") not in ("exited", "dead"):  # collect() came too early: retry later
            raise ExecutorUnavailable(f"the run is still {state.get('Status', 'unknown')}")
        meta = self._meta_dir(job)
        labels = (container.attrs.get("Config") or {}).get("Labels") or {}
        exit_code = int(state.get("ExitCode", -1))
        oom_killed = bool(state.get("OOMKilled"))
        timed_out = meta is not None and (meta / TIMED_OUT).exists()
        outcome = Outcome(
            exit_code=exit_code,
            oom_killed=oom_killed,
            memory_bytes=int((container.attrs.get("HostConfig") or {}).get("Memory") or 0),
            timeout_s=_int_or_none(labels.get(LABEL_TIMEOUT)) or 0,
            timed_out=timed_out,
            pids_limit=int((container.attrs.get("HostConfig") or {}).get("PidsLimit") or 0),
            engine_restarted=exit_code in STOP_SIGNAL_EXITS
            and not oom_killed
            and not timed_out
            and self._finished_before_engine_start(state.get("FinishedAt")),
        )
        if meta is not None:
            tty = bool((container.attrs.get("Config") or {}).get("Tty"))
            _save_logs(self._client().api, str(container.id), meta, tty=tty)
            _write_private(meta / STATE_JSON, json.dumps(asdict(outcome)).encode())
        return outcome

    def _finished_before_engine_start(self, finished_at: Any) -> bool:
        """True when a run ended before the engine last started: the engine restarted since."""
        finished = _docker_time(finished_at)
        if finished is None:
            return False
        try:
            network = self._client().networks.get("bridge")
        except docker.errors.NotFound:  # an engine without its default network: can't tell
            return False
        started = _docker_time(network.attrs.get("Created"))
        return started is not None and finished <= started

    def _saved_outcome(self, job: RunnableJob) -> Outcome | None:
        meta = self._meta_dir(job)
        if meta is None:
            return None
        try:
            return Outcome(**json.loads((meta / STATE_JSON).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _read_outcome(self, job: RunnableJob) -> tuple[Outcome | None, str, str]:
        """(outcome, stdout tail, stderr tail) from the container (saved into the work dir on
        the way) or, once it is gone, from what was saved; the tails only when the work dir is
        gone too (the engine's logs), else read from it by the caller."""
        stdout_tail = stderr_tail = ""
        with self._engine("read the run's outcome", server_errors_retry=True):
            container = self._exited_container(job)
            if container is None:
                return self._saved_outcome(job), "", ""
            try:
                outcome = self._save_from_container(job, container)
            except OSError as exc:
                raise ExecutorError(f"could not save the run's outcome: {exc}") from exc
            if self._meta_dir(job) is None:  # the work dir is gone: ask the engine
                stdout_tail, stderr_tail = (
                    _tail(text)[-TAIL_BYTES:] for text in self.logs(job, tail=TAIL_LINES)
                )
        return outcome, stdout_tail, stderr_tail

    def _collect(self, job: RunnableJob) -> Collected:
        outcome, stdout_tail, stderr_tail = self._read_outcome(job)
        if outcome is None:
            return Collected(
                succeeded=False,
                error_message="the run's container disappeared before its outcome was read",
                error_detail=f"no container {container_name(job)} and no saved state",
            )
        meta = self._meta_dir(job)
        if meta is not None:
            stdout_tail = _read_tail(meta / STDOUT_LOG)
            stderr_tail = _read_tail(meta / STDERR_LOG)

        result = Collected(
            succeeded=False,
            exit_code=outcome.exit_code,
            stdout_tail=stdout_tail,
            stderr_tail=stderr_tail,
        )
        if outcome.engine_restarted:
            failed = self._failed(
                result, f"stopped by the engine restarting (exit status {outcome.exit_code})"
            )
            failed.error_message = ENGINE_RESTARTED
            failed.engine_restarted = True
            return failed
        if outcome.exit_code != 0:
            return self._failed(result, _failure_headline(outcome, stderr_tail))
        try:
            result.values, result.files = self._outputs(job)
        except ExecutorError as exc:
            return self._failed(result, str(exc))
        result.succeeded = True
        return result

    @staticmethod
    def _failed(result: Collected, headline: str) -> Collected:
        last = _last_lines(result.stderr_tail)
        result.succeeded = False
        result.error_message = (
            f"{headline}; the last lines it wrote to stderr:\n{last}" if last else headline
        )
        result.error_detail = (
            f"{headline}\nexit code: {result.exit_code}\n"
            f"--- stderr (last {TAIL_LINES} lines) ---\n{result.stderr_tail}"
        )
        return result

    def _outputs(self, job: RunnableJob) -> tuple[dict[str, Any], dict[str, list[Path]]]:
        """outputs.json as ``(values, files)``; ExecutorError with a readable message if bad."""
        workdir = self.workdir(job)
        run_spec = job.run_spec or {}
        mount_point = str(workdir) if _is_webmev(run_spec) else WORK
        path = _outputs_json_path(workdir, run_spec, mount_point)
        if path is None:
            return {}, {}  # the operation declares no outputs: nothing to read
        values = _read_outputs_json(path, f"{mount_point}/{OUTPUTS_JSON}")
        if mount_point != WORK:
            return values, _webmev_files(run_spec, values, workdir)
        declared = set((job.run_spec or {}).get("file_outputs") or ())
        return values, _output_files(workdir, values, declared)

    def _logs(self, job: RunnableJob, *, tail: int | None = None) -> tuple[str, str]:
        with self._engine("read the run's logs", server_errors_retry=True):
            container = self._container(job)
            if container is not None:
                return _engine_logs(container, tail)
        meta = self._meta_dir(job)
        if meta is None:
            return "", ""
        if tail is not None and tail <= 0:
            return "", ""
        return (
            _read_tail(meta / STDOUT_LOG, max_bytes=0, lines=tail),
            _read_tail(meta / STDERR_LOG, max_bytes=0, lines=tail),
        )


LOG_STREAMS = {1: STDOUT_LOG, 2: STDERR_LOG}  # the engine's stream numbers: 1 stdout, 2 stderr


def _save_logs(api: Any, container_id: str, meta: Path, *, tty: bool) -> None:
    """Both output streams of a container into ``meta``/stdout.log and stderr.log in one engine
    request (the SDK's ``logs`` asks one stream at a time and inspects the container before
    each); each file is written aside and renamed into place when complete."""
    files = {
        number: os.fdopen(
            os.open(
                meta / f"{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644
            ),
            "wb",
        )
        for number, name in LOG_STREAMS.items()
    }
    try:
        url = api._url("/containers/{0}/logs", container_id)
        response = api._get(url, params={"stdout": 1, "stderr": 1}, stream=True)
        try:
            api._raise_for_status(response)
            _demultiplex(response.raw, files, tty=tty)
        finally:
            response.close()
    finally:
        for fh in files.values():
            fh.close()
    for name in LOG_STREAMS.values():
        os.replace(meta / f"{name}.tmp", meta / name)


def _demultiplex(raw: Any, files: dict[int, Any], *, tty: bool) -> None:
    """Write the engine's log stream into ``files`` by stream number. Without a TTY it comes in
    frames: an 8-byte header (the stream number, three zero bytes, the payload's length as a
    big-endian 32-bit number), then the payload; with one (never a Ferry run's), as one raw
    stream, kept as stdout."""
    if tty:
        while chunk := raw.read(65536):
            files[1].write(chunk)
        return
    while len(header := _read_exactly(raw, 8)) == 8:
        target = files.get(header[0], files[1])
        remaining = int.from_bytes(header[4:8], "big")
        while remaining:
            chunk = raw.read(min(remaining, 65536))
            if not chunk:
                return  # cut short: keep what came
            target.write(chunk)
            remaining -= len(chunk)


def _read_exactly(raw: Any, size: int) -> bytes:
    """``size`` bytes from ``raw``, fewer only at its end."""
    data = b""
    while len(data) < size:
        chunk = raw.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _engine_logs(container: Any, tail: int | None) -> tuple[str, str]:
    """(stdout, stderr) of a container, the last ``tail`` lines of each if given.

    Docker applies ``tail`` to both streams together before keeping the one asked for, so the
    last N lines of stdout may need a larger tail: ask for more until each stream has N lines or
    the whole log was read (fewer lines came back, from both streams, than were asked for).
    """

    def fetch(ask: int | str) -> tuple[str, str]:
        out = container.logs(stdout=True, stderr=False, tail=ask)
        err = container.logs(stdout=False, stderr=True, tail=ask)
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    if tail is None:
        return fetch("all")
    if tail <= 0:
        return "", ""
    ask = max(tail, 100)
    while ask < 1_000_000:
        out, err = fetch(ask)
        out_lines, err_lines = len(out.splitlines()), len(err.splitlines())
        if out_lines + err_lines < ask or (out_lines >= tail and err_lines >= tail):
            return _tail(out, tail), _tail(err, tail)
        ask *= 4
    out, err = fetch("all")
    return _tail(out, tail), _tail(err, tail)


def _attempt(job: RunnableJob) -> int:
    """Which attempt at the job a container created now is: 1 + how often it was submitted."""
    return int(getattr(job, "attempts", 0) or 0) + 1


def _of_earlier_attempt(container: Any, attempt: int) -> bool:
    labels = (container.attrs.get("Config") or {}).get("Labels") or {}
    created_for = _int_or_none(labels.get(LABEL_ATTEMPT))
    return created_for is not None and created_for < attempt


_DOCKER_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _docker_time(value: Any) -> datetime | None:
    """A time as the engine writes it (RFC 3339 with up to nanoseconds), to the microsecond."""
    match = _DOCKER_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    seconds, fraction, zone = match.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    return datetime.fromisoformat(f"{seconds}.{micros}{'+00:00' if zone == 'Z' else zone}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _container_summary(
    attrs: dict[str, Any],
) -> tuple[str, str, dict[str, str], datetime | None]:
    """(state, what the engine says of it, labels, when it was created) of a container, from
    an inspection or from a sparse listing (their shapes differ)."""
    state = attrs.get("State")
    if isinstance(state, dict):  # inspected
        status = str(state.get("Status") or "")
        exit_code = state.get("ExitCode")
        detail = f"{status} ({exit_code})" if status == "exited" else status
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return status, detail, labels, _docker_time(attrs.get("Created"))
    return (
        str(state or ""),
        str(attrs.get("Status") or ""),
        attrs.get("Labels") or {},
        (_created_at(attrs)),
    )


def _created_at(attrs: dict[str, Any]) -> datetime | None:
    """When submit() created (and at once started) the container, from a sparse listing."""
    created = _int_or_none(attrs.get("Created"))
    return datetime.fromtimestamp(created, UTC) if created else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _strings(value: Any) -> list[str] | None:
    """The strings an output value may name files with: a string or a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _path_problem(name: str, ref: str, kind: str, mount_point: str = WORK) -> str:
    shown = json.dumps(ref)[1:-1][:200]
    if kind == "missing":
        return f"output {name!r} names {shown}, which the operation did not write"
    if kind == "outside":
        return f"output {name!r} names {shown}, which is outside {mount_point}"
    if kind == "not_file":
        return f"output {name!r} names {shown}, which is not a regular file"
    return f"output {name!r} names {shown!r}, which is not a file path"


def _is_webmev(run_spec: dict[str, Any]) -> bool:
    """A run under WebMEV's contract (see the module's doc), not Ferry's."""
    return run_spec.get("contract") == "webmev"


def _copy_private(source: Path, target: Path) -> None:
    """Copy an input into a WebMEV run's execution dir, readable by the run's user, never
    following a symlink at the target (the run may have left one there in an earlier attempt)."""
    tmp = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with open(source, "rb") as src:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    os.chmod(tmp, 0o644)  # whatever the umask
    os.replace(tmp, target)


def _webmev_items(name: str, how: dict[str, Any], value: Any) -> list[Any]:
    """An output's entries in outputs.json: a list of them for ``many``, else the one."""
    if not how.get("many"):
        return [value]
    if not isinstance(value, list):
        raise ExecutorError(
            f"output {name!r} holds many files: outputs.json must give a list, "
            f"not {json.dumps(value)[:100]}"
        )
    return value


def _webmev_path(name: str, how: dict[str, Any], item: Any) -> str:
    """The path one outputs.json entry names: a DataResource is a path, a VariableDataResource
    ``{"path": …, "resource_type": …}`` with one of its declared types."""
    kind = how.get("attribute_type")
    if kind != "VariableDataResource":
        if not isinstance(item, str):
            raise ExecutorError(
                f"output {name!r} must be a file path in outputs.json (a {kind}), "
                f"not {json.dumps(item)[:100]}"
            )
        return item
    if not (
        isinstance(item, dict) and isinstance(item.get("path"), str) and "resource_type" in item
    ):
        raise ExecutorError(
            f'output {name!r} must be {{"path": …, "resource_type": …}} in '
            f"outputs.json (a VariableDataResource), not {json.dumps(item)[:100]}"
        )
    types = list(how.get("resource_types") or [])
    if item["resource_type"] not in types:
        raise ExecutorError(
            f"output {name!r} says resource_type {json.dumps(item['resource_type'])}, "
            f"which is not one of its declared types ({', '.join(types)})"
        )
    return str(item["path"])


def _webmev_files(
    run_spec: dict[str, Any], values: dict[str, Any], workdir: Path
) -> dict[str, list[Path]]:
    """The files of a WebMEV run's outputs.json, as WebMEV's output converters read it
    (:func:`_webmev_path`), ``many`` a list of those; paths absolute inside the execution dir.
    ``null`` (no file) and a missing key are left to the caller, which knows what is required."""
    mount_point = str(workdir)
    described = run_spec.get("webmev_outputs") or {}
    files: dict[str, list[Path]] = {}
    for name, how in described.items():
        value = values.get(name)
        if value is None:
            continue
        found = []
        for item in _webmev_items(name, how, value):
            ref = _webmev_path(name, how, item)
            try:
                found.append(resolve_output_path(workdir, ref, mount_point))
            except OutputPathError as exc:
                raise ExecutorError(_path_problem(name, ref, exc.kind, mount_point)) from None
        files[name] = found
    return files
