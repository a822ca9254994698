"""An in-memory executor (like Django's ``locmem`` cache): nothing runs, runs follow a script.

It shows what adding an executor takes (this module plus one ``settings.EXECUTORS`` entry) and
lets tests drive Ferry through every outcome without an engine::

    EXECUTORS = {"dummy": {"BACKEND": "executors.dummy.DummyExecutor",
                           "OPTIONS": {"script": {"polls": 2}, "work_root": "/tmp/dummy"}}}

What a run does is its script: ``OPTIONS["script"]`` (for every run) updated by the run spec's
``"dummy"`` mapping (for one run). The keys, all optional:

- ``outcome``: ``"succeed"`` (default), ``"fail"``, or ``"run"`` (runs until cancelled);
- ``polls``: how many polls the run is RUNNING before it is EXITED (default 1; 0: EXITED at the
  first poll);
- ``values``: the output values a successful run returns (default ``{}``);
- ``files``: the output files a successful run writes, output name -> {file name: text}
  (default ``{}``); they are written at ``collect`` under ``OPTIONS["work_root"]`` (default: a
  ``ferry-dummy`` folder in the system's temporary directory), ``<job id>/<output>/<name>``,
  and removed by ``remove_workdir``;
- ``message``: what a failed run tells users (default "the dummy run failed");
- ``exit_code``: the exit code reported (default 0 on success, 1 on failure);
- ``stdout`` / ``stderr``: its logs.

State lives in this process, in a dict per executor alias: ``reset()`` empties it, and so does
changing ``settings.EXECUTORS``. Polls move a run along (its first poll records when it
started); ``cleanup`` forgets it, so polls afterwards say MISSING.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from uuid import UUID

from django.core.signals import setting_changed
from django.dispatch import receiver

from .base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Observation,
    RunnableJob,
    RunState,
)

OUTCOMES = ("succeed", "fail", "run")
SCRIPT_KEYS = {"outcome", "polls", "values", "files", "message", "exit_code", "stdout", "stderr"}


@dataclass
class DummyRun:
    """One run: its script and how far it got."""

    external_id: str
    script: dict[str, Any]
    submissions: int = 1  # how often submit() was called for it (only the first started it)
    polls: int = 0
    started_at: datetime | None = None
    cancelled: bool = False
    history: list[RunState] = field(default_factory=list)  # the states polls reported

    @property
    def ended(self) -> bool:
        if self.cancelled:
            return True
        if self.script["outcome"] == "run":
            return False
        polls: int = self.script["polls"]
        return self.polls > polls


# alias -> job id -> run
_runs: dict[str, dict[UUID, DummyRun]] = {}
_lock = threading.Lock()


def reset() -> None:
    """Forget every run of every dummy executor."""
    with _lock:
        _runs.clear()


def runs(alias: str) -> dict[UUID, DummyRun]:
    """The runs of the dummy executor ``alias`` (a copy; for tests)."""
    with _lock:
        return dict(_runs.get(alias, {}))


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "EXECUTORS":
        reset()


def script_problems(script: Any, where: str) -> list[str]:
    """What is wrong with a script (``where`` names it in the messages)."""
    if not isinstance(script, dict):
        return [f"{where} must be a mapping"]
    problems = [f"{where} has an unknown key {key!r}" for key in script if key not in SCRIPT_KEYS]
    if "outcome" in script and script["outcome"] not in OUTCOMES:
        problems.append(f"{where}['outcome'] must be one of {', '.join(OUTCOMES)}")
    polls = script.get("polls", 1)
    if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
        problems.append(f"{where}['polls'] must be a whole number, 0 or more")
    exit_code = script.get("exit_code", 0)
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        problems.append(f"{where}['exit_code'] must be a whole number")
    if not isinstance(script.get("values", {}), dict):
        problems.append(f"{where}['values'] must be a mapping")
    problems.extend(_files_problems(script.get("files", {}), f"{where}['files']"))
    for key in ("message", "stdout", "stderr"):
        if not isinstance(script.get(key, ""), str):
            problems.append(f"{where}[{key!r}] must be text")
    return problems


def _files_problems(files: Any, where: str) -> list[str]:
    if not isinstance(files, dict):
        return [f"{where} must be a mapping of output names to {{file name: text}}"]
    problems = []
    for output, named in files.items():
        if not isinstance(named, dict) or not all(isinstance(t, str) for t in named.values()):
            problems.append(f"{where}[{output!r}] must be a mapping of file names to text")
            continue
        for name in named:
            if not isinstance(name, str) or PurePosixPath(name).name != name or name in ("", ".."):
                problems.append(f"{where}[{output!r}] has a file name that is not plain: {name!r}")
    return problems


class DummyExecutor(Executor):
    engine_name: ClassVar[str] = "The dummy executor"

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        problems = self.check_options(options)
        if problems:
            raise ExecutorError(f"executor {alias!r} is misconfigured: {'; '.join(problems)}")
        super().__init__(alias, options)

    @classmethod
    def check_options(cls, options: Any) -> list[str]:
        if not isinstance(options, dict):
            return ["OPTIONS must be a mapping"]
        problems = [
            f"OPTIONS has an unknown key {key!r}"
            for key in options
            if key not in ("script", "work_root")
        ]
        work_root = options.get("work_root")
        if work_root is not None and not Path(str(work_root)).is_absolute():
            problems.append("OPTIONS['work_root'] must be an absolute path")
        return problems + script_problems(options.get("script", {}), "OPTIONS['script']")

    @property
    def work_root(self) -> Path:
        root = self.options.get("work_root")
        return Path(root) if root else Path(tempfile.gettempdir()) / "ferry-dummy" / self.alias

    def _write_files(
        self, job: RunnableJob, files: dict[str, dict[str, str]]
    ) -> dict[str, list[Path]]:
        """The script's output files, written into the run's folder (again at each collect)."""
        written: dict[str, list[Path]] = {}
        for output, named in files.items():
            folder = self.work_root / str(job.id) / output
            folder.mkdir(parents=True, exist_ok=True)
            written[output] = []
            for name, text in named.items():
                (folder / name).write_text(text, "utf-8")
                written[output].append(folder / name)
        return written

    def external_id(self, job: RunnableJob) -> str:
        return f"dummy-{job.id}"

    def _script(self, job: RunnableJob) -> dict[str, Any]:
        own = job.run_spec.get("dummy", {}) if isinstance(job.run_spec, dict) else None
        problems = script_problems(own, "the run spec's 'dummy'")
        if problems:
            raise ExecutorError("; ".join(problems))
        script: dict[str, Any] = {"outcome": "succeed", "polls": 1, "values": {}}
        script.update(self.options.get("script", {}))
        script.update(own)
        failed = script["outcome"] == "fail"
        script.setdefault("exit_code", 1 if failed else 0)
        script.setdefault("message", "the dummy run failed" if failed else "")
        return script

    def _runs(self) -> dict[UUID, DummyRun]:
        return _runs.setdefault(self.alias, {})

    def _submit(self, job: RunnableJob) -> str:
        script = self._script(job)  # a bad script is refused before anything is recorded
        with _lock:
            run = self._runs().get(job.id)
            if run is not None:
                run.submissions += 1
                return run.external_id
            run = DummyRun(self.external_id(job), script)
            self._runs()[job.id] = run
            return run.external_id

    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        with _lock:
            return {job.id: self._observe(job.id) for job in jobs}

    def _observe(self, job_id: UUID) -> Observation:
        run = self._runs().get(job_id)
        if run is None:
            return Observation(RunState.MISSING, "no dummy run for this job")
        if not run.cancelled:
            run.polls += 1
            if run.started_at is None:
                run.started_at = datetime.now(UTC)
        if run.cancelled:
            observation = Observation(RunState.EXITED, "cancelled", run.started_at)
        elif run.ended:
            observation = Observation(RunState.EXITED, run.script["outcome"], run.started_at)
        else:
            observation = Observation(RunState.RUNNING, "running", run.started_at)
        run.history.append(observation.state)
        return observation

    def _cancel(self, job: RunnableJob) -> None:
        with _lock:
            run = self._runs().get(job.id)
            if run is not None and not run.ended:
                run.cancelled = True

    def _collect(self, job: RunnableJob) -> Collected:
        with _lock:
            run = self._runs().get(job.id)
            if run is None:
                return Collected(succeeded=False, error_message="the run disappeared")
            if not run.ended:
                raise ExecutorUnavailable("the run has not ended yet")
            script = run.script
            if run.cancelled:
                return Collected(succeeded=False, error_message="cancelled")
            succeeded = script["outcome"] == "succeed"
            files = self._write_files(job, script.get("files", {})) if succeeded else {}
            return Collected(
                succeeded=succeeded,
                error_message="" if succeeded else script["message"],
                exit_code=script["exit_code"],
                stdout_tail=script.get("stdout", ""),
                stderr_tail=script.get("stderr", ""),
                values=dict(script["values"]) if succeeded else {},
                files=files,
            )

    def _logs(self, job: RunnableJob, *, tail: int | None = None) -> tuple[str, str]:
        with _lock:
            run = self._runs().get(job.id)
        if run is None:
            return "", ""
        stdout, stderr = run.script.get("stdout", ""), run.script.get("stderr", "")
        if tail is not None:
            stdout = "".join(stdout.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
            stderr = "".join(stderr.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
        return stdout, stderr

    def _cleanup(self, job: RunnableJob) -> None:
        with _lock:
            self._runs().pop(job.id, None)

    def remove_workdir(self, job: RunnableJob) -> None:
        shutil.rmtree(self.work_root / str(job.id), ignore_errors=True)
