"""The contract every executor keeps, checked through its public interface only.

Subclass :class:`ExecutorContract` in a ``test_contract_<name>.py`` module (its name starts with
``Test``) and give it:

- a fixture ``executor`` yielding the executor under test (and removing what it started);
- ``quick_job()``: a run that succeeds soon with the output values ``quick_values`` and the
  output files ``quick_files`` (output name -> how many files it holds);
- ``failing_job()``: a run that fails soon; ``long_job()``: a run that runs until cancelled;
- ``unknown_polls``: how many polls of a never-submitted job it takes to report MISSING
  (a remote engine may say PENDING for a grace period first);
- ``run_identity(executor, job)``: something naming the one run behind a job (a container id,
  a process id, a workflow list), to tell that a second submit started nothing; None (or
  empty: not visible yet) right after a submit skips the check until the run ended.

The invariants: submit is idempotent (same job -> same external id, one run, even after the
end); poll answers exactly the jobs asked, in RunStates; runs end in EXITED; collect reads the
outcome of an ended run (its values and files: each a file on this host or a bucket URI; a
failure with a message users can read) and refuses an early one with
ExecutorUnavailable; cancel stops a run, and is harmless on an unknown or ended run; cleanup is
idempotent; wait_for_exits returns within its timeout, and an executor that
``waits_for_exits`` returns as soon as a run exits, naming its job.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

from executors.base import (
    Collected,
    Executor,
    ExecutorUnavailable,
    Observation,
    RunnableJob,
    RunState,
)
from tests.executors.test_executor_docker import StandInJob

ENDED = {RunState.EXITED, RunState.MISSING}


def wait_for_state(
    executor: Executor, job: RunnableJob, states: set[RunState], timeout_s: float
) -> Observation:
    """Poll until the job's run is in one of ``states``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        observation = executor.poll([job])[job.id]
        if observation.state in states:
            return observation
        if time.monotonic() > deadline:
            pytest.fail(f"the run is still {observation} after {timeout_s} s")
        time.sleep(0.1)


def check_output_files(collected: Collected, expected: dict[str, int]) -> None:
    """Each output of ``expected`` holds that many files, each a regular file on this host
    (``files``) or a bucket URI (``remote_files``)."""
    for name, count in expected.items():
        local = collected.files.get(name, [])
        remote = collected.remote_files.get(name, [])
        assert len(local) + len(remote) == count, (name, local, remote)
        assert all(isinstance(path, Path) and path.is_file() for path in local), local
        assert all(isinstance(uri, str) and "://" in uri for uri in remote), remote


class ExecutorContract:
    wait_s: ClassVar[float] = 60.0  # a few times what the slowest run of the executor takes
    unknown_polls: ClassVar[int] = 1
    quick_values: ClassVar[dict[str, Any]] = {}
    quick_files: ClassVar[dict[str, int]] = {}

    def quick_job(self) -> RunnableJob:
        raise NotImplementedError

    def failing_job(self) -> RunnableJob:
        raise NotImplementedError

    def long_job(self) -> RunnableJob:
        raise NotImplementedError

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        return None

    def unknown_job(self) -> RunnableJob:
        """A job nobody submitted (with the run spec of a quick one)."""
        return StandInJob(run_spec=self.quick_job().run_spec, id=uuid.uuid4())

    # -- the checks ---------------------------------------------------------------------------

    def test_poll_of_nothing_and_of_an_unknown_run(self, executor: Executor) -> None:
        assert executor.poll([]) == {}
        unknown = self.unknown_job()
        observations = [executor.poll([unknown]) for _ in range(self.unknown_polls)]
        assert all(set(observed) == {unknown.id} for observed in observations)
        states = [observed[unknown.id].state for observed in observations]
        assert states[-1] is RunState.MISSING, states
        assert all(state is RunState.PENDING for state in states[:-1]), states
        executor.cancel(unknown)  # nothing to stop: not an error
        executor.cleanup(unknown)
        executor.cleanup(unknown)

    def test_a_quick_run_is_submitted_once_and_succeeds(self, executor: Executor) -> None:
        job, bystander = self.quick_job(), self.unknown_job()
        first = executor.submit(job)
        early = self.run_identity(executor, job)
        assert executor.submit(job) == first
        if early:  # a remote engine may not show a run at once
            assert self.run_identity(executor, job) == early

        observed = executor.poll([job, bystander])
        assert set(observed) == {job.id, bystander.id}
        assert all(isinstance(o.state, RunState) for o in observed.values())
        assert set(executor.poll([job])) == {job.id}

        wait_for_state(executor, job, {RunState.EXITED}, self.wait_s)
        identity = self.run_identity(executor, job)
        if early:
            assert identity == early
        assert executor.submit(job) == first  # an ended run is not started again
        assert self.run_identity(executor, job) == identity
        assert executor.poll([job])[job.id].state is RunState.EXITED

        collected = executor.collect(job)
        assert collected.succeeded, collected.error_message
        assert collected.error_message == ""
        assert {k: collected.values.get(k) for k in self.quick_values} == self.quick_values
        assert self.quick_files, "the quick run must produce output files"
        check_output_files(collected, self.quick_files)
        stdout, stderr = executor.logs(job)
        assert isinstance(stdout, str)
        assert isinstance(stderr, str)

        executor.cancel(job)  # an ended run: not an error
        executor.cleanup(job)
        executor.cleanup(job)
        assert set(executor.poll([job])) == {job.id}

    def test_a_failing_run_is_reported_with_a_message(self, executor: Executor) -> None:
        job = self.failing_job()
        executor.submit(job)
        wait_for_state(executor, job, {RunState.EXITED}, self.wait_s)
        collected = executor.collect(job)
        assert not collected.succeeded
        assert collected.error_message.strip()
        executor.cleanup(job)

    def test_cancel_stops_a_long_run_and_again_is_harmless(self, executor: Executor) -> None:
        job = self.long_job()
        executor.submit(job)
        wait_for_state(executor, job, {RunState.RUNNING}, self.wait_s)
        with pytest.raises(ExecutorUnavailable):
            executor.collect(job)  # too early: the caller collects later

        executor.cancel(job)
        wait_for_state(executor, job, ENDED, self.wait_s)
        executor.cancel(job)
        assert executor.poll([job])[job.id].state in ENDED
        executor.cleanup(job)
        executor.cleanup(job)

    def test_wait_for_exits_wakes_on_an_exit_or_waits_out_its_timeout(
        self, executor: Executor
    ) -> None:
        began = time.monotonic()
        assert isinstance(executor.wait_for_exits(0), set)  # at once (and starts following)
        assert time.monotonic() - began < 5
        if not executor.waits_for_exits:  # polled in batches: a plain pause
            began = time.monotonic()
            assert executor.wait_for_exits(0.2) == set()
            assert time.monotonic() - began >= 0.2
            return
        job = self.quick_job()
        executor.submit(job)
        began = time.monotonic()
        seen: set[Any] = set()
        while job.id not in seen and time.monotonic() - began < self.wait_s:
            seen |= executor.wait_for_exits(self.wait_s * 2)  # returns at the exit, not after
        assert job.id in seen, "the run's exit was not seen"
        assert time.monotonic() - began < self.wait_s
        wait_for_state(executor, job, {RunState.EXITED}, 10)  # a poll may lag the event a bit
        executor.cleanup(job)
