"""The executor interface: submit, poll many at once, cancel, collect.

The public methods do what every executor needs the same way (they turn the backend's library
errors into :class:`ExecutorError`/:class:`ExecutorUnavailable`) and call the protected ones
(``_submit``, ``_poll``, …) that each backend implements; optional capabilities (``describe``,
``remove_workdir``, ``reads_buckets``, ``describes_workflows``, ``builds_images`` with
``build_image``, ``pushes_images`` with ``push_image``, ``waits_for_exits`` with
``wait_for_exits``) are declared here with the defaults of
executors that lack them.

An executor is one module plus one entry in ``settings.EXECUTORS``; it never sees HTTP requests.
It works on jobs through the attributes below (a ``operations.models.Job`` has them):

- ``job.id`` (UUID): names the run (container name / workflow id) so that ``submit`` is idempotent;
- ``job.attempts`` (int, optional): how often the job was submitted before (a job runs again
  when its engine restarted under it and its operation is safe to retry);
- ``job.run_spec`` (dict): what to run, built by ``operations`` when the job is created (its
  shapes are the TypedDicts of ``executors.specs``). For the local Docker executor::

      {"image": "ferry-op/table-summary:1.0.0-0123abcd",
       "command": "summarize /inputs/table/counts.tsv 5",   # run as ["/bin/sh", "-c", command]
       "mounts": [{"source": "/abs/host/file", "target": "/inputs/table/counts.tsv"}],  # read-only
       "limits": {"memory_mb": 512, "cpus": 1.0, "pids": 256, "timeout_s": 600}}
"""

from __future__ import annotations

import contextlib
import enum
import math
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol
from uuid import UUID

from .specs import WdlRunSpec


class RunnableJob(Protocol):
    id: UUID
    run_spec: dict[str, Any]


class RunState(enum.StrEnum):
    """What an executor observes of a run, before Ferry maps it to a job status."""

    PENDING = "pending"  # known to the engine, not started yet
    RUNNING = "running"
    EXITED = "exited"  # finished (any exit code, OOM or timeout): ready for collect()
    MISSING = "missing"  # the engine has no such run


@dataclass(frozen=True)
class Observation:
    state: RunState
    detail: str = ""
    # When the run started, where the engine says (a poll that lags still records it).
    started_at: datetime | None = None


@dataclass
class Collected:
    """The result of a finished run."""

    succeeded: bool
    # For the user: what went wrong, e.g. "ran out of memory (limit 512 MiB)".
    error_message: str = ""
    error_detail: str = ""  # for staff
    exit_code: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # simple output values from outputs.json
    files: dict[str, list[Path]] = field(default_factory=dict)  # output name -> host paths
    # Output name -> bucket URIs (s3://…, gs://…) left by a remote engine; Ferry relocates them.
    remote_files: dict[str, list[str]] = field(default_factory=dict)
    # Output name -> the output's value with its structure (lists, maps, pairs, structs: see
    # wdl/outputs.py), each file in it a Path (a host file) or a str (a bucket URI). WDL
    # executors fill it for every output that holds files; ``files``/``remote_files`` then list
    # the same files flattened. Ferry stores the files and keeps the structure.
    file_outputs: dict[str, Any] = field(default_factory=dict)
    # True when the run was stopped by its engine restarting (not by anything it did itself):
    # Ferry may run it again if its operation is marked safe to retry.
    engine_restarted: bool = False


class ExecutorError(Exception):
    """The engine refused or failed an action; the message is safe to show to users."""


class ExecutorUnavailable(ExecutorError):
    """The engine can't be reached right now; the job keeps its state and is retried. The
    message is a plain sentence (see :func:`connection_problem`), never an exception's repr."""


@dataclass(frozen=True)
class ImageBuild:
    """What to build: ``tag`` from ``context`` with its ``dockerfile`` (a path in it)."""

    context: Path
    dockerfile: str
    tag: str
    labels: dict[str, str]
    report: Callable[[str], None]  # told each step ("Step 2/5 : RUN make") as it starts


class ImageBuildFailed(ExecutorError):
    """The build failed: ``error`` at ``step`` ("" before the first), ``log`` its output."""

    def __init__(self, tag: str, step: str, error: str, log: str) -> None:
        where = f"at {step!r}" if step else "before its first step"
        super().__init__(f"building {tag} failed {where}: {error}")
        self.step, self.error, self.log = step, error, log


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception nested in it (causes, contexts, ``reason``s, ``args``), each
    once, nearest first."""
    chain: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        nested = (current.__cause__, current.__context__, getattr(current, "reason", None))
        pending.extend(e for e in (*nested, *current.args) if isinstance(e, BaseException))
    return chain


# What a connection error of these kinds means, in the order they are looked for.
_CONNECTION_PROBLEMS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...
] = (
    (FileNotFoundError, "its socket does not exist (the engine is not running)"),
    (ConnectionRefusedError, "the connection was refused"),
    ((ConnectionResetError, ConnectionAbortedError, BrokenPipeError), "the connection was cut"),
    (PermissionError, "Ferry is not allowed to connect to it"),
    (socket.gaierror, "its host name can't be resolved"),
)


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or "Timeout" in type(error).__name__


def connection_problem(exc: BaseException) -> str:
    """Why a connection to an engine failed, in a few plain words ("the connection was
    refused"), found in the chain of exceptions that requests, urllib3 and the Docker SDK nest
    into one another. Their own messages are reprs of that chain (``('Connection aborted.',
    FileNotFoundError(2, 'No such file or directory'))``) and are never shown."""
    chain = _exception_chain(exc)
    for error in chain:
        for kinds, problem in _CONNECTION_PROBLEMS:
            if isinstance(error, kinds):
                return problem
    if any(_is_timeout(error) for error in chain):
        return "it did not answer in time"
    for error in chain:
        if isinstance(error, OSError) and error.strerror:
            return error.strerror[:1].lower() + error.strerror[1:]
    return "the connection failed"


class Executor(ABC):
    # The operation modes it runs ("docker", "wdl"); empty: any.
    modes: ClassVar[tuple[str, ...]] = ()
    # True when its engine reads input files from buckets (URIs) rather than local paths.
    reads_buckets: ClassVar[bool] = False
    # What users are told is not answering while it can't be reached ("The Docker engine").
    engine_name: ClassVar[str] = "The job's executor"
    # True when it checks WDL documents itself (``describe``) before a run is submitted.
    describes_workflows: ClassVar[bool] = False
    # The exceptions of its libraries that mean "the engine failed", which the public methods
    # turn into this module's error family (:meth:`translate_error`), so that callers never see
    # a library's own exception. requests' errors are OSErrors; a backend adds its SDK's.
    backend_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    # True when it builds operation images with ``build_image`` (and publishes them with
    # ``push_image`` when ``pushes_images``): an engine on this host uses the local image store;
    # one on a remote cluster pushes to a registry it pulls from.
    builds_images: ClassVar[bool] = False
    pushes_images: ClassVar[bool] = False
    # True when its engine tells when a run ends (an event stream): ``wait_for_exits`` returns
    # as soon as a run exits, and the poll loop waits on it instead of sleeping between polls.
    # Executors without it are polled in batches every FERRY_POLL_INTERVAL_S.
    waits_for_exits: ClassVar[bool] = False

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        self.alias = alias
        self.options = options

    def workdir_for(self, job_id: Any) -> Path | None:
        """The folder on this host where job ``job_id`` keeps its files while it runs (a WebMEV
        run's execution dir, mounted at the same path), or None for an executor whose jobs run
        elsewhere. Known before the job is submitted."""
        return None

    # -- the public interface: the invariant work, then the backend's protected method ----------

    def submit(self, job: RunnableJob) -> str:
        """Start the run; idempotent (a second call finds the first run). Returns its id."""
        with self.engine_errors("start the run"):
            return self._submit(job)

    def poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        """Observe many runs with as few engine calls as possible (never one per job, but for
        a few runs, which an engine may answer cheaper one by one than in a listing of all).

        Returns exactly the jobs asked about: nothing (and no engine call) for none, and a job
        the backend said nothing about is MISSING."""
        if not jobs:
            return {}
        with self.engine_errors("list runs"):
            observed = self._poll(jobs)
        return {
            job.id: observed.get(job.id) or Observation(RunState.MISSING, "no run for this job")
            for job in jobs
        }

    def cancel(self, job: RunnableJob) -> None:
        """Stop the run for real; a run that is already gone is not an error."""
        with self.engine_errors("stop the run"):
            self._cancel(job)

    def collect(self, job: RunnableJob) -> Collected:
        """Read the outcome of an EXITED run: outputs, logs, or a readable failure."""
        with self.engine_errors("read the run's outcome"):
            return self._collect(job)

    def logs(self, job: RunnableJob, *, tail: int | None = None) -> tuple[str, str]:
        """(stdout, stderr) of a run, the last ``tail`` lines of each if given."""
        with self.engine_errors("read the run's logs"):
            return self._logs(job, tail=tail)

    def cleanup(self, job: RunnableJob) -> None:
        """Remove what the run left on the engine (container, work dir); idempotent."""
        with self.engine_errors("clean up the run"):
            self._cleanup(job)

    def wait_for_exits(self, timeout: float) -> set[UUID]:
        """Block until one of this executor's runs exits (any of them: also of jobs submitted
        while it waits), or ``timeout`` seconds passed; the ids of the jobs whose runs were
        seen exiting since the last call (empty on a timeout; with no timeout, those seen
        already, at once). A poll right after may still show such a run running for a moment
        (the engine tells of the exit before its state shows it). Never raises: while the engine
        can't tell (its event stream is down) it just waits out the timeout, and the caller's
        next poll finds what changed. Executors that don't wait (``waits_for_exits`` False)
        sleep for the timeout."""
        return self._wait_for_exits(max(0.0, timeout))

    # -- errors: the same for every backend -------------------------------------------------------

    @contextlib.contextmanager
    def engine_errors(self, action: str) -> Iterator[None]:
        """Let this module's errors through and turn the backend's (``backend_errors``) into
        them, saying which ``action`` failed ("start the run"); anything else is a bug and
        propagates as it is."""
        try:
            yield
        except ExecutorError:
            raise
        except self.backend_errors as exc:
            raise self.translate_error(exc, action) from exc

    def translate_error(self, exc: BaseException, action: str) -> ExecutorError:
        """The executor error for a backend exception: by default the engine can't be reached
        (ExecutorUnavailable, retried later) and why, in plain words. Backends whose libraries
        tell refusals apart (an API's 4xx) override this and call it for the rest."""
        engine = self.engine_name[:1].lower() + self.engine_name[1:]
        return ExecutorUnavailable(
            f"{engine} can't be reached to {action}: {connection_problem(exc)}"
        )

    # -- optional capabilities: the defaults of executors that lack them -------------------------

    def describe(
        self,
        source: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        dependencies_zip: bytes | None = None,
        once: bool = False,
    ) -> dict[str, Any] | None:
        """The engine's own check of a WDL document (``{"valid", "errors", …}``; its imports,
        if any, as a zip), or None when it can't check this one (the caller checks with
        miniwdl). ``once``: asked once, without retries (bounded by the timeouts alone). Only
        called on executors whose ``describes_workflows`` is True."""
        return None

    def prepare_wdl(self, spec: WdlRunSpec, *, job_id: UUID, workspace_id: str) -> WdlRunSpec:
        """A WDL run spec with what this engine needs besides its ``inputs`` (added before
        submit, once the inputs are where it reads them); executors that read the workflow's
        folder themselves need nothing more."""
        return spec

    def build_image(self, build: ImageBuild) -> str:
        """Build the image ``build.tag`` where this engine's runs find it; its build log.
        ImageBuildFailed when the build fails. Only called on executors whose
        ``builds_images`` is True."""
        raise ExecutorError(f"{self.engine_name} does not build images.")

    def image_labels(self, tag: str) -> dict[str, str] | None:
        """The labels of the image ``tag`` where this engine's runs find images, or None when
        it has no such image. Only called on executors whose ``builds_images`` is True."""
        raise ExecutorError(f"{self.engine_name} does not keep images.")

    def push_image(self, tag: str) -> str:
        """Publish a built image to the registry this engine pulls from; what the push said.
        Only called on executors whose ``pushes_images`` is True (a local engine needs none)."""
        raise ExecutorError(f"{self.engine_name} does not push images.")

    def stop_waiting(self) -> None:
        """Stop following the engine's events (when the executor is dropped); a later
        ``wait_for_exits`` starts again. Nothing to stop for executors that don't wait."""
        return None

    def wake_waiter(self) -> None:
        """End a ``wait_for_exits`` under way (it returns what it saw, maybe nothing): the
        waiter has other work (e.g. a job to submit). Executors that don't wait: nothing."""
        return None

    def poll_page(self) -> int | None:
        """How many runs one engine call of ``poll`` answers for (a page of the engine's
        answer), or None when one call answers for any number (it lists every run): the poll
        loop asks about that many jobs at a time."""
        return None

    def _wait_for_exits(self, timeout: float) -> set[UUID]:
        """What ``wait_for_exits`` does: executors with ``waits_for_exits`` override it."""
        time.sleep(timeout)
        return set()

    def remove_workdir(self, job: RunnableJob) -> None:
        """Delete the run's work dir on this machine once its outputs are stored (after
        ``cleanup``); executors that keep none on Ferry's side have nothing to do."""
        return None

    # -- what each backend implements ------------------------------------------------------------

    @abstractmethod
    def _submit(self, job: RunnableJob) -> str:
        """Start the run, or find the one an earlier call started; its engine id."""

    @abstractmethod
    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        """Observations of ``jobs`` (never empty), keyed by job id."""

    @abstractmethod
    def _cancel(self, job: RunnableJob) -> None:
        """Stop the run; nothing when it is gone already."""

    @abstractmethod
    def _collect(self, job: RunnableJob) -> Collected:
        """The outcome of an EXITED run."""

    @abstractmethod
    def _logs(self, job: RunnableJob, *, tail: int | None) -> tuple[str, str]:
        """(stdout, stderr), the last ``tail`` lines of each if ``tail`` is given."""

    @abstractmethod
    def _cleanup(self, job: RunnableJob) -> None:
        """Remove what the run left on the engine; idempotent."""


def check_local_options(options: dict[str, Any], minimums: dict[str, float]) -> list[str]:
    """Problems with what every local executor's OPTIONS have: an absolute ``work_root``, and
    ``defaults``/``ceilings`` that name known limits (``minimums``: limit -> smallest value)."""
    problems = []
    work_root = options.get("work_root")
    if not isinstance(work_root, str | Path) or not Path(work_root).is_absolute():
        problems.append("OPTIONS['work_root'] must be an absolute path")
    for group in ("defaults", "ceilings"):
        values = options.get(group) or {}
        if not isinstance(values, dict):
            problems.append(f"OPTIONS[{group!r}] must be a dict")
            continue
        for key, value in values.items():
            if key not in minimums:
                problems.append(f"OPTIONS[{group!r}] has an unknown limit {key!r}")
            elif (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < minimums[key]
            ):
                problems.append(f"OPTIONS[{group!r}][{key!r}] must be at least {minimums[key]}")
    return problems
