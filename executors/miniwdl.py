"""Run WDL workflows locally with miniwdl, one detached ``miniwdl run`` process per job.

Configured in ``settings.EXECUTORS``::

    "local-miniwdl": {
        "BACKEND": "executors.miniwdl.MiniwdlExecutor",
        "OPTIONS": {
            "work_root": "/var/lib/ferry/work/miniwdl",   # one run dir per job below it
            "defaults": {"timeout_s": 3600},
            # optional: "ceilings" ({"timeout_s": 604800}), "max_concurrent_tasks" (0: one per
            # CPU), "docker_image_default" (for tasks without runtime.docker; miniwdl's own
            # default, ubuntu:22.04, would be pulled), "stop_grace_s" (20: SIGTERM to SIGKILL),
            # "as_user" (true: task containers run as Ferry's uid:gid when Ferry isn't root;
            # false makes miniwdl chown task files with an alpine:3 container instead)
        },
    }

The run spec ``operations`` builds for a WDL job::

    {"workflow_dir": "/abs/bundle/dir",      # the unpacked WDL bundle
     "main": "main.wdl",                     # relative to workflow_dir
     "workflow_name": "wf",
     "inputs": {"wf.x": 3, "wf.reads": "/abs/host/path.txt", ...},   # local paths for files
     "outputs": {"name": {"type": "file"|"integer"|..., "many"?: bool, "shape"?: {...}}, ...},
                                             # no "wf." prefix; "shape": how files are held
     "limits": {"timeout_s": 3600}}

Tasks run as Docker swarm services (``[docker_swarm] auto_init``), with ``/bin/sh`` as the command
shell; a workflow may read only the files its inputs name (``allow_any_input = false``) and import
only WDL inside its bundle. Images are never pulled by Ferry (miniwdl pulls a missing one).

The run dir, per job::

    <work_root>/<job id>/
        inputs.json, miniwdl.cfg    what submit() wrote for miniwdl
        process.json                the miniwdl process: pid, its start time in /proc (against pid
                                    reuse), when it started and its timeout
        .submit.lock                held while submit() starts the run
        miniwdl.stdout, .stderr     miniwdl's own output (its progress log is on stderr)
        timed_out                   written when poll() stopped a run past its deadline
        run/                        miniwdl's run dir: outputs.json on success, error.json on
                                    failure, workflow.log, call-<name>/ with stdout.txt, stderr.txt

The process is started in a session of its own, so a worker that dies doesn't take it along;
``poll()`` only reads files and checks pids. ``cancel()`` sends SIGTERM to the process group
(miniwdl then removes its services), SIGKILL after ``stop_grace_s``, and removes any swarm service
or container still mounting something in the run dir. ``logs()`` and ``Collected`` give miniwdl's
progress log as "stdout" and the failing (or last) task's stderr.txt as "stderr". Linux only
(/proc).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import docker.errors

from wdl.outputs import OutputShapeError, Position, engine_shape, rebuild

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
from .images import build_client, build_local_image, local_image_labels

INPUTS_JSON = "inputs.json"
CONFIG = "miniwdl.cfg"
PROCESS_JSON = "process.json"
SUBMIT_LOCK = ".submit.lock"
ENGINE_STDOUT = "miniwdl.stdout"
ENGINE_STDERR = "miniwdl.stderr"
TIMED_OUT = "timed_out"
RUN_SUBDIR = "run"
OUTPUTS_JSON = "outputs.json"
ERROR_JSON = "error.json"
TASK_LOG = "task.log"

logger = logging.getLogger(__name__)

MINIWDL_LABEL = "miniwdl_run_id"  # the label miniwdl puts on its services and their containers
DEFAULT_TIMEOUT_S = 3600
DEFAULT_STOP_GRACE_S = 20.0
KILL_WAIT_S = 5.0
TAIL_LINES = 200
TAIL_BYTES = 64 * 1024
MAX_JSON_BYTES = 4 * 1024 * 1024
DETAIL_JSON_CHARS = 8000
API_TIMEOUT_S = 60


def run_state(*, recorded: bool, alive: bool) -> RunState:
    """What a run dir says: no recorded process is MISSING, a live one RUNNING, else EXITED."""
    if not recorded:
        return RunState.MISSING
    return RunState.RUNNING if alive else RunState.EXITED


def external_id(job: RunnableJob) -> str:
    return f"miniwdl:{job.id}"


@dataclass(frozen=True)
class WorkflowRun:
    """A checked run spec."""

    workflow_dir: Path
    main: Path
    workflow_name: str
    inputs: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    timeout_s: int


@dataclass(frozen=True)
class ProcessRecord:
    """The miniwdl process of a run, as saved in process.json."""

    pid: int
    proc_start: int  # field 22 of /proc/<pid>/stat: clock ticks after boot; 0 if unknown
    started_at: float  # unix time
    timeout_s: int

    @property
    def deadline(self) -> float:
        return self.started_at + self.timeout_s


# -- processes --------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def is_alive(record: ProcessRecord) -> bool:
    """True while the recorded process (not a later one with the same pid) runs."""
    stat = _proc_stat(record.pid)
    if stat is None:
        return False
    state, start = stat
    if record.proc_start and start != record.proc_start:
        return False
    return state not in ("Z", "X")


def _signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    if not is_alive(record):
        return
    try:
        os.killpg(record.pid, sig)  # the process leads its own session and group
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise ExecutorError(f"not allowed to stop the miniwdl process {record.pid}") from exc


def _wait_gone(record: ProcessRecord, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while is_alive(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _leads_its_session(pid: int) -> bool:
    """True for a process started with ``start_new_session`` (its pid is its session id); the
    children it forks share its command line but not that."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = raw[raw.rfind(")") + 2 :].split()  # state, ppid, pgrp, session, ...
    return len(fields) > 3 and fields[3] == str(pid)


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _find_engine_process(run_root: Path) -> ProcessRecord | None:
    """A miniwdl process already running in ``run_root`` (started by a submit that then died
    before recording it), found by its command line."""
    wanted = f"{run_root}/."
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted.encode() not in args or b"WDL" not in args:
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None or stat[0] in ("Z", "X") or not _leads_its_session(int(entry.name)):
            continue  # gone, or a child miniwdl forked (same command line, not the one started)
        started = _boot_time() + stat[1] / os.sysconf("SC_CLK_TCK")
        return ProcessRecord(int(entry.name), stat[1], started, 0)
    return None


# -- files ------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between workers (and threads) submitting the same job."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    """A JSON file's content, or None if it is missing, too large or not JSON."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _read_tail(path: Path | None, *, lines: int | None = TAIL_LINES, max_bytes: int = 0) -> str:
    """The end of a text file: at most ``max_bytes`` bytes (0: all), then ``lines`` lines."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if max_bytes and size > max_bytes:
                fh.seek(size - max_bytes)
                fh.readline()  # drop the partial first line
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    if lines is None:
        return text
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""


def _last_line(text: str, width: int = 300) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def _inside(path: str | Path, root: Path) -> bool:
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


def _input_paths(inputs: Any) -> set[str]:
    """Real paths of every string in the inputs that names an existing file."""
    paths: set[str] = set()
    stack = [inputs]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and os.path.isabs(value) and os.path.isfile(value):
            paths.add(os.path.realpath(value))
    return paths


# -- failures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    headline: str
    exit_code: int | None = None
    stderr_file: Path | None = None


def _innermost_cause(error: dict[str, Any]) -> dict[str, Any]:
    cause = error
    for _ in range(50):  # nested subworkflows
        inner = cause.get("cause")
        if not isinstance(inner, dict):
            break
        cause = inner
    return cause


# miniwdl logs why the engine failed a task's container (e.g. "starting container failed: …") as
# `docker task failed :: …, message: "<json string>"`; error.json only has the exit status.
_DOCKER_TASK_FAILED = re.compile(
    r'docker task (?:failed|rejected) :: .*?\bmessage: ("(?:[^"\\]|\\.)*")'
)
_ORDINARY_EXIT = re.compile(r"task: non-zero exit \(\d+\)")


def _container_failure(call_dir: Path) -> str | None:
    """What the Docker engine said when it failed the call's container, unless it only reported
    the command's own non-zero exit."""
    said = None
    for line in _read_tail(call_dir / TASK_LOG, lines=None, max_bytes=TAIL_BYTES).splitlines():
        match = _DOCKER_TASK_FAILED.search(line)
        if match is None:
            continue
        try:
            message = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(message, str) and message and not _ORDINARY_EXIT.fullmatch(message):
            said = message
    return said[:500] if said else None


def _who_failed(error: dict[str, Any], call: str | None, call_dir: Path | None) -> str:
    """The failed task (named from its own error.json when it can be read), else the workflow."""
    if call and call.startswith("call-"):
        call_error = _read_json(call_dir / ERROR_JSON) if call_dir is not None else None
        task = None
        if isinstance(call_error, dict) and isinstance(call_error.get("task"), str):
            task = call_error["task"]
        return f'task "{task or call.removeprefix("call-")}" ({call})'
    return f'workflow "{error.get("workflow") or error.get("run") or "?"}"'


def _failure_stderr(cause: dict[str, Any], run_root: Path, call_dir: Path | None) -> Path | None:
    """The stderr file miniwdl names (inside the run only), else the failed call's own."""
    named = cause.get("stderr_file")
    if isinstance(named, str) and _inside(named, run_root):
        return Path(named)
    if call_dir is not None:
        candidate = call_dir / "stderr.txt"
        return candidate if candidate.is_file() else None
    return None


def describe_failure(error: Any, run_root: Path) -> Failure:
    """Read miniwdl's error.json: which call failed, how, and where its stderr is."""
    if not isinstance(error, dict):
        return Failure("the workflow failed (miniwdl's error.json is unreadable)")
    cause = _innermost_cause(error)
    kind = str(cause.get("error") or "error")
    call = cause.get("run") if isinstance(cause.get("run"), str) else None
    raw_dir = cause.get("dir")
    # The failed call's folder, when it is one this run made (never read elsewhere).
    call_dir = (
        Path(raw_dir) if call and isinstance(raw_dir, str) and _inside(raw_dir, run_root) else None
    )
    who = _who_failed(error, call, call_dir)
    stderr_file = _failure_stderr(cause, run_root, call_dir)
    if kind == "CommandFailed":
        status = cause.get("exit_status")
        exit_code = status if isinstance(status, int) else None
        headline = f"{who} failed with exit status {status}"
        engine_said = _container_failure(call_dir) if call_dir is not None else None
        if engine_said:  # the command never ran: its stderr is empty, the engine knows why
            headline = f"{headline}: {engine_said}"
        return Failure(headline, exit_code, stderr_file)
    if kind == "Terminated":
        return Failure(f"{who} was stopped before it finished", None, stderr_file)
    message = str(cause.get("message") or "").strip()
    detail = f"{kind}: {message[:300]}" if message else kind
    return Failure(f"{who} failed ({detail})", None, stderr_file)


def _call_dirs(root: Path) -> Iterator[Path]:
    """call-*/ dirs below a run dir, including those of subworkflows (never task work dirs)."""
    try:
        children = sorted(p for p in root.iterdir() if p.name.startswith("call-") and p.is_dir())
    except OSError:
        return
    for child in children:
        if not child.is_symlink():
            yield child
            yield from _call_dirs(child)


def _last_task_stderr(run_root: Path) -> Path | None:
    newest: tuple[float, Path] | None = None
    for call_dir in _call_dirs(run_root):
        path = call_dir / "stderr.txt"
        with contextlib.suppress(OSError):
            mtime = path.stat().st_mtime
            if newest is None or mtime >= newest[0]:
                newest = (mtime, path)
    return newest[1] if newest else None


class MiniwdlExecutor(Executor):
    modes = ("wdl",)
    engine_name = "The Docker engine"
    backend_errors = (OSError, docker.errors.DockerException)
    builds_images = True  # miniwdl's tasks run on this host's Docker engine

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        super().__init__(alias, options)
        problems = self.check_options(options)
        if problems:
            raise ExecutorError(f"executor {alias!r} is misconfigured: {'; '.join(problems)}")
        self.work_root = Path(options["work_root"])
        self.default_timeout_s = int(
            (options.get("defaults") or {}).get("timeout_s", DEFAULT_TIMEOUT_S)
        )
        ceiling = (options.get("ceilings") or {}).get("timeout_s")
        self.max_timeout_s: int | None = int(ceiling) if ceiling is not None else None
        self.max_concurrent_tasks = int(options.get("max_concurrent_tasks", 0))
        self.docker_image_default: str | None = options.get("docker_image_default") or None
        self.stop_grace_s = float(options.get("stop_grace_s", DEFAULT_STOP_GRACE_S))
        self.as_user = bool(options.get("as_user", True))
        self._docker: Any = None
        self._docker_pid = 0
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------

    @classmethod
    def check_options(cls, options: Any) -> list[str]:
        """Problems with an OPTIONS dict, as sentences (used by the system check too)."""
        if not isinstance(options, dict):
            return ["OPTIONS must be a dict"]
        problems = check_local_options(options, {"timeout_s": 1})
        tasks = options.get("max_concurrent_tasks", 0)
        if not _is_whole(tasks) or tasks < 0:
            problems.append("OPTIONS['max_concurrent_tasks'] must be a whole number ≥ 0")
        grace = options.get("stop_grace_s", DEFAULT_STOP_GRACE_S)
        if not isinstance(grace, int | float) or isinstance(grace, bool) or not 0 <= grace < 3600:
            problems.append("OPTIONS['stop_grace_s'] must be a number of seconds (0 to 3600)")
        image = options.get("docker_image_default")
        if image is not None and (not isinstance(image, str) or not image.strip()):
            problems.append("OPTIONS['docker_image_default'] must be an image name")
        if not isinstance(options.get("as_user", True), bool):
            problems.append("OPTIONS['as_user'] must be true or false")
        return problems

    def workflow_run(self, run_spec: Any) -> WorkflowRun:
        """The run spec, checked; ExecutorError with a readable message if it is unusable."""
        if not isinstance(run_spec, dict):
            raise ExecutorError("the run spec must be a mapping")
        workflow_dir, main = run_spec.get("workflow_dir"), run_spec.get("main")
        if not isinstance(workflow_dir, str) or not os.path.isabs(workflow_dir):
            raise ExecutorError("the run has no absolute workflow_dir")
        if not os.path.isdir(workflow_dir):
            raise ExecutorError("the workflow's files are missing on this server")
        if not isinstance(main, str) or not main or os.path.isabs(main):
            raise ExecutorError("the run's main WDL file must be a path relative to workflow_dir")
        main_path = Path(workflow_dir) / main
        if not _inside(main_path, Path(workflow_dir)) or not main_path.is_file():
            raise ExecutorError(f"the workflow has no file {main}")
        name = run_spec.get("workflow_name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ExecutorError("the run has no valid workflow_name")
        inputs = run_spec.get("inputs") or {}
        if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
            raise ExecutorError("the run's inputs must be a mapping of input names to values")
        outputs = run_spec.get("outputs") or {}
        if not isinstance(outputs, dict) or not all(isinstance(v, dict) for v in outputs.values()):
            raise ExecutorError("the run's outputs must be a mapping of output names to specs")
        return WorkflowRun(
            workflow_dir=Path(workflow_dir),
            main=main_path,
            workflow_name=name,
            inputs=inputs,
            outputs=outputs,
            timeout_s=self._timeout_for(run_spec.get("limits")),
        )

    def _timeout_for(self, limits: Any) -> int:
        limits = limits or {}
        if not isinstance(limits, dict):
            raise ExecutorError("the run's limits must be a mapping")
        unknown = sorted(set(limits) - {"timeout_s"})
        if unknown:
            raise ExecutorError(
                f"unknown resource limit {unknown[0]!r} (this server knows timeout_s)"
            )
        value = limits.get("timeout_s", self.default_timeout_s)
        if not _is_whole(value) or value < 1:
            raise ExecutorError("the resource limit timeout_s must be a whole number ≥ 1")
        if self.max_timeout_s is not None and value > self.max_timeout_s:
            raise ExecutorError(
                f"the operation asks for timeout_s={value}, above this server's ceiling of "
                f"{self.max_timeout_s}"
            )
        return int(value)

    def config_text(self) -> str:
        """The miniwdl configuration file every run of this executor gets."""
        as_user = self.as_user and os.geteuid() != 0  # root's containers run as root anyway
        lines = [
            "[scheduler]",
            f"task_concurrency = {self.max_concurrent_tasks}",
            "fail_fast = true",
            "[docker_swarm]",
            "auto_init = true",
            "[task_runtime]",
            "command_shell = /bin/sh",
            f"as_user = {str(as_user).lower()}",
        ]
        if self.docker_image_default:
            lines.append(f"defaults = {json.dumps({'docker': self.docker_image_default})}")
        lines += [
            "[file_io]",
            "allow_any_input = false",
            "[call_cache]",
            "put = false",
            "get = false",
            "[download_cache]",
            "put = false",
            "get = false",
        ]
        return "\n".join(lines) + "\n"

    # -- run dirs -----------------------------------------------------------------------------

    def run_dir(self, job: RunnableJob) -> Path:
        return self.work_root / str(UUID(str(job.id)))

    def _record(self, run_dir: Path) -> ProcessRecord | None:
        data = _read_json(run_dir / PROCESS_JSON)
        if not isinstance(data, dict):
            return None
        try:
            return ProcessRecord(
                pid=int(data["pid"]),
                proc_start=int(data["proc_start"]),
                started_at=float(data["started_at"]),
                timeout_s=int(data["timeout_s"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    # -- the run ------------------------------------------------------------------------------

    def _submit(self, job: RunnableJob) -> str:
        run = self.workflow_run(job.run_spec)
        run_dir = self.run_dir(job)
        try:
            os.makedirs(self.work_root, mode=0o700, exist_ok=True)
            run_dir.mkdir(mode=0o700, exist_ok=True)
            with _locked(run_dir / SUBMIT_LOCK):
                if self._record(run_dir) is None:
                    self._start(run, run_dir)
        except OSError as exc:
            raise ExecutorError(f"could not start miniwdl: {exc}") from exc
        return external_id(job)

    def _start(self, run: WorkflowRun, run_dir: Path) -> None:
        """Start miniwdl in the run dir (or adopt one a dead worker started) and record it."""
        run_root = run_dir / RUN_SUBDIR
        orphan = _find_engine_process(run_root)
        if orphan is not None:
            record = ProcessRecord(orphan.pid, orphan.proc_start, orphan.started_at, run.timeout_s)
            _write_atomic(run_dir / PROCESS_JSON, json.dumps(asdict(record)).encode())
            return
        if run_root.exists():  # left by a launch that died before miniwdl got going
            shutil.rmtree(run_root)
        try:
            inputs = json.dumps(run.inputs).encode()
        except (TypeError, ValueError) as exc:
            raise ExecutorError(f"the run's inputs can't be written as JSON: {exc}") from exc
        _write_atomic(run_dir / INPUTS_JSON, inputs)
        _write_atomic(run_dir / CONFIG, self.config_text().encode())
        argv = [
            sys.executable,
            "-m",
            "WDL",
            "run",
            str(run.main),
            "-i",
            str(run_dir / INPUTS_JSON),
            "--dir",
            f"{run_root}/.",
            "--cfg",
            str(run_dir / CONFIG),
            "--path",
            str(run.workflow_dir),
            "--no-outside-imports",
            "--no-color",
        ]
        env = {k: v for k, v in os.environ.items() if k != "MINIWDL_CFG"}
        with (
            open(run_dir / ENGINE_STDOUT, "wb") as out,
            open(run_dir / ENGINE_STDERR, "wb") as err,
        ):
            process = subprocess.Popen(
                argv,
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # outlives this worker; its own process group
            )
        stat = _proc_stat(process.pid)  # readable even if it exited: a zombie until waited for
        record = ProcessRecord(process.pid, stat[1] if stat else 0, time.time(), run.timeout_s)
        # Reap it when it exits, so it doesn't linger as a zombie of this worker.
        threading.Thread(target=process.wait, name=f"miniwdl-{process.pid}", daemon=True).start()
        _write_atomic(run_dir / PROCESS_JSON, json.dumps(asdict(record)).encode())

    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        now = time.time()
        return {job.id: self._observe(job, now) for job in jobs}

    def _observe(self, job: RunnableJob, now: float) -> Observation:
        run_dir = self.run_dir(job)
        record = self._record(run_dir) if run_dir.is_dir() else None
        alive = record is not None and is_alive(record)
        state = run_state(recorded=record is not None, alive=alive)
        if record is None:
            return Observation(state, "no miniwdl run for this job")
        run_root = run_dir / RUN_SUBDIR
        has_result = (run_root / OUTPUTS_JSON).exists() or (run_root / ERROR_JSON).exists()
        if state is RunState.RUNNING:
            if has_result:
                return Observation(state, "finishing")
            if now > record.deadline:
                return self._time_out(job, record)
            return Observation(state, f"miniwdl running (pid {record.pid})")
        if (run_root / OUTPUTS_JSON).exists():
            return Observation(state, "succeeded")
        if has_result:
            return Observation(state, "failed")
        return Observation(state, "miniwdl stopped without a result")

    def _time_out(self, job: RunnableJob, record: ProcessRecord) -> Observation:
        """Stop a run past its deadline, leaving a marker for collect()."""
        with contextlib.suppress(OSError):
            _write_atomic(self.run_dir(job) / TIMED_OUT, f"{record.timeout_s}\n".encode())
        try:
            self._stop(job, record)
        except ExecutorError:  # leftovers (if any) are removed again by cleanup()
            logger.warning("could not stop job %s past its deadline", job.id, exc_info=True)
        return Observation(RunState.EXITED, f"timed out after {record.timeout_s} s")

    def _cancel(self, job: RunnableJob) -> None:
        run_dir = self.run_dir(job)
        if not run_dir.is_dir():
            return
        self._stop(job, self._record(run_dir))

    def _stop(self, job: RunnableJob, record: ProcessRecord | None) -> None:
        """SIGTERM the miniwdl process group, SIGKILL it if it lingers, remove its leftovers."""
        if record is not None and is_alive(record):
            _signal_group(record, signal.SIGTERM)
            if not _wait_gone(record, self.stop_grace_s):
                _signal_group(record, signal.SIGKILL)
                _wait_gone(record, KILL_WAIT_S)
        self._remove_leftovers(self.run_dir(job))

    def _cleanup(self, job: RunnableJob) -> None:
        """Stop the run if it still runs and remove its run dir; idempotent."""
        run_dir = self.run_dir(job)
        if not os.path.lexists(run_dir):
            return
        run_root = run_dir / RUN_SUBDIR
        record = self._record(run_dir)
        finished_cleanly = (record is None or not is_alive(record)) and (
            (run_root / OUTPUTS_JSON).exists() or (run_root / ERROR_JSON).exists()
        )
        if not finished_cleanly:
            self._stop(job, record)
        try:
            shutil.rmtree(run_dir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ExecutorError(f"could not remove the run dir of job {job.id}: {exc}") from exc

    # -- the Docker engine (only to remove what a stopped run left) ----------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._docker is None or self._docker_pid != os.getpid():
                try:
                    self._docker = docker.from_env(timeout=API_TIMEOUT_S)
                except docker.errors.DockerException as exc:
                    raise ExecutorUnavailable(
                        f"the Docker engine can't be reached: {connection_problem(exc)}"
                    ) from exc
                self._docker_pid = os.getpid()
            return self._docker

    def translate_error(self, exc: BaseException, action: str) -> ExecutorError:
        """Docker failures as ExecutorUnavailable: cancel and cleanup are retried later."""
        if isinstance(exc, docker.errors.APIError):
            return ExecutorUnavailable(f"the Docker engine failed to {action}: {exc}")
        return super().translate_error(exc, action)

    def build_image(self, build: ImageBuild) -> str:
        return build_local_image(build_client(None), build)

    def image_labels(self, tag: str) -> dict[str, str] | None:
        return local_image_labels(build_client(None), tag)

    def leftovers(self, run_dir: Path) -> tuple[list[Any], list[Any]]:
        """(swarm services, containers) of miniwdl that mount something in ``run_dir``."""
        client = self._client()
        with self.engine_errors("list miniwdl's services"):
            services = client.services.list(filters={"label": MINIWDL_LABEL})
            containers = client.containers.list(
                all=True, sparse=True, filters={"label": MINIWDL_LABEL}
            )
        mine_services = [s for s in services if _mounts_inside(_service_mounts(s), run_dir)]
        mine_containers = [c for c in containers if _mounts_inside(c.attrs.get("Mounts"), run_dir)]
        return mine_services, mine_containers

    def _remove_leftovers(self, run_dir: Path) -> None:
        services, containers = self.leftovers(run_dir)
        client = self._client()
        with self.engine_errors("remove miniwdl's services"):
            for service in services:
                with contextlib.suppress(docker.errors.NotFound):
                    service.remove()
            for container in containers:
                try:
                    client.api.remove_container(container.id, force=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: removal already in progress
                        raise

    # -- outcome ------------------------------------------------------------------------------

    def _collect(self, job: RunnableJob) -> Collected:
        run_dir = self.run_dir(job)
        if not run_dir.is_dir():
            return Collected(
                succeeded=False,
                error_message="the run's work dir disappeared before its outcome was read",
                error_detail=f"no run dir {run_dir}",
            )
        run_root = run_dir / RUN_SUBDIR
        record = self._record(run_dir)
        timed_out = (run_dir / TIMED_OUT).exists()
        if record is not None and is_alive(record) and not timed_out:
            raise ExecutorUnavailable("the run is still running")
        error = _read_json(run_root / ERROR_JSON) if (run_root / ERROR_JSON).exists() else None
        failure = describe_failure(error, run_root) if error is not None else None
        stderr_file = failure.stderr_file if failure else None
        result = Collected(
            succeeded=False,
            exit_code=failure.exit_code if failure else None,
            stdout_tail=_read_tail(run_dir / ENGINE_STDERR, max_bytes=TAIL_BYTES),
            stderr_tail=_read_tail(
                stderr_file or _last_task_stderr(run_root), max_bytes=TAIL_BYTES
            ),
        )
        if timed_out:
            timeout_s = record.timeout_s if record else "?"
            return _failed(result, f"timed out after {timeout_s} s", error, with_stderr=False)
        if (run_root / OUTPUTS_JSON).exists():
            try:
                result.values, result.files, result.file_outputs = self._outputs(job, run_root)
            except ExecutorError as exc:
                return _failed(result, str(exc), None, with_stderr=False)
            result.succeeded = True
            return result
        if failure is not None:
            return _failed(result, failure.headline, error, with_stderr=True)
        engine_said = _last_line(result.stdout_tail)
        headline = "miniwdl stopped without a result"
        result.error_message = f"{headline}: {engine_said}" if engine_said else headline
        result.error_detail = (
            f"{headline}\n--- miniwdl's log (last {TAIL_LINES} lines) ---\n{result.stdout_tail}"
        )
        return result

    def _outputs(
        self, job: RunnableJob, run_root: Path
    ) -> tuple[dict[str, Any], dict[str, list[Path]], dict[str, Any]]:
        """outputs.json as ``(values, files, file_outputs)`` (see :class:`Collected`), without
        the workflow name's prefix."""
        spec = job.run_spec or {}
        prefix = f"{spec.get('workflow_name', '')}."
        declared: dict[str, Any] = spec.get("outputs") or {}
        raw = _read_json(run_root / OUTPUTS_JSON)
        if not isinstance(raw, dict):
            raise ExecutorError("miniwdl's outputs.json is unreadable")
        # The job's input files when Ferry lists them (an empty list too: then a String input
        # naming a host file is no file of the run), else every input naming an existing file.
        listed = spec["input_files"] if "input_files" in spec else spec.get("inputs")
        allowed_inputs = _input_paths(listed or {})
        values: dict[str, Any] = {}
        files: dict[str, list[Path]] = {}
        structured: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.removeprefix(prefix)
            if value is None:
                continue  # an optional output without a value
            shape = engine_shape(declared.get(name))
            if shape is None:
                values[name] = value
                continue
            found: list[Path] = []  # in order; an empty array of files stays an (empty) output

            def resolve(
                position: Position, ref: str, name: str = name, found: list[Path] = found
            ) -> Path:
                path = self._output_path(name, ref, run_root, allowed_inputs)
                found.append(path)
                return path

            try:
                structured[name] = rebuild(shape, value, resolve)
            except OutputShapeError as exc:
                raise ExecutorError(exc.describe(name)) from None
            files[name] = found
        return values, files, structured

    @staticmethod
    def _output_path(name: str, ref: str, run_root: Path, allowed_inputs: set[str]) -> Path:
        real = os.path.realpath(ref)
        if not (_inside(real, run_root) or real in allowed_inputs):
            raise ExecutorError(f"output {name!r} names a file outside the run")
        if not os.path.isfile(real):
            raise ExecutorError(f"output {name!r} names {os.path.basename(ref)}, which is missing")
        return Path(real)

    def _logs(self, job: RunnableJob, *, tail: int | None = None) -> tuple[str, str]:
        """(miniwdl's progress log, the failing or else the last task's stderr)."""
        run_dir = self.run_dir(job)
        if not run_dir.is_dir() or (tail is not None and tail <= 0):
            return "", ""
        run_root = run_dir / RUN_SUBDIR
        error = _read_json(run_root / ERROR_JSON) if (run_root / ERROR_JSON).exists() else None
        failing = describe_failure(error, run_root).stderr_file if error is not None else None
        return (
            _read_tail(run_dir / ENGINE_STDERR, lines=tail),
            _read_tail(failing or _last_task_stderr(run_root), lines=tail),
        )


def _failed(result: Collected, headline: str, error: Any, *, with_stderr: bool) -> Collected:
    last = _last_line(result.stderr_tail) if with_stderr else ""
    result.succeeded = False
    result.error_message = f"{headline}: {last}" if last else headline
    parts = [headline]
    if error is not None:
        parts.append(
            "--- miniwdl's error.json ---\n" + json.dumps(error, indent=2)[:DETAIL_JSON_CHARS]
        )
    parts.append(f"--- task stderr (last {TAIL_LINES} lines) ---\n{result.stderr_tail}")
    result.error_detail = "\n".join(parts)
    return result


def _service_mounts(service: Any) -> Any:
    template = (service.attrs.get("Spec") or {}).get("TaskTemplate") or {}
    return (template.get("ContainerSpec") or {}).get("Mounts")


def _mounts_inside(mounts: Any, run_dir: Path) -> bool:
    if not isinstance(mounts, list):
        return False
    roots = {str(run_dir), os.path.realpath(run_dir)}
    for mount in mounts:
        source = str((mount or {}).get("Source") or "")
        if any(source == root or source.startswith(root + "/") for root in roots):
            return True
    return False


def _is_whole(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    )
