"""The in-memory executor keeps the executor contract, and what it adds: scripts, reset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executors import dummy, registry
from executors.base import Executor, ExecutorError, RunnableJob, RunState
from executors.checks import check_executors
from executors.dummy import DummyExecutor
from tests.executors.contract import ExecutorContract, wait_for_state
from tests.executors.test_executor_docker import StandInJob

ALIAS = "dummy"  # the entry in config/settings/test.py


@pytest.fixture
def executor() -> Iterator[Executor]:
    dummy.reset()
    yield registry.get_executor(ALIAS)
    dummy.reset()


class TestDummyContract(ExecutorContract):
    wait_s = 5.0
    quick_values = {"answer": 42}
    quick_files = {"said": 1, "parts": 2}

    def quick_job(self) -> RunnableJob:
        files = {"said": {"said.txt": "hello\n"}, "parts": {"a.txt": "a\n", "b.txt": "b\n"}}
        return StandInJob({"dummy": {"values": {"answer": 42}, "files": files, "stdout": "one\n"}})

    def failing_job(self) -> RunnableJob:
        return StandInJob({"dummy": {"outcome": "fail", "message": "no lines to count"}})

    def long_job(self) -> RunnableJob:
        return StandInJob({"dummy": {"outcome": "run"}})

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        run = dummy.runs(executor.alias).get(job.id)
        return None if run is None else id(run)


def test_the_settings_entry_is_all_it_takes(settings: Any) -> None:
    assert isinstance(registry.get_executor(ALIAS), DummyExecutor)
    assert check_executors() == []
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "bad-dummy": {
            "BACKEND": "executors.dummy.DummyExecutor",
            "OPTIONS": {"script": {"outcome": "explode", "polls": -1}, "colour": "red"},
        },
    }
    problems = [(e.id, e.msg) for e in check_executors()]
    assert (
        "ferry.E005",
        "settings.EXECUTORS['bad-dummy']: OPTIONS has an unknown key 'colour'.",
    ) in (problems)
    assert any("['outcome'] must be one of succeed, fail, run" in msg for _, msg in problems)
    assert any("['polls'] must be a whole number" in msg for _, msg in problems)
    with pytest.raises(ExecutorError, match="misconfigured"):
        registry.get_executor("bad-dummy")


def test_a_second_submit_starts_nothing(executor: DummyExecutor) -> None:
    job = StandInJob({"dummy": {"polls": 3}})
    executor.submit(job)
    executor.poll([job])
    executor.submit(job)
    (run,) = dummy.runs(ALIAS).values()
    assert run.submissions == 2
    assert run.polls == 1  # the same run, not restarted


def test_the_script_sets_how_long_a_run_takes_and_its_outcome(settings: Any) -> None:
    settings.EXECUTORS = {
        "scripted": {
            "BACKEND": "executors.dummy.DummyExecutor",
            "OPTIONS": {"script": {"polls": 2, "values": {"n": 1}, "stderr": "a\nb\nc\n"}},
        }
    }
    executor = registry.get_executor("scripted")
    default, own = StandInJob({}), StandInJob({"dummy": {"polls": 0, "exit_code": 7}})
    executor.submit(default)
    executor.submit(own)
    assert [executor.poll([default])[default.id].state for _ in range(3)] == [
        RunState.RUNNING,
        RunState.RUNNING,
        RunState.EXITED,
    ]
    assert executor.poll([own])[own.id].state is RunState.EXITED
    assert executor.collect(default).values == {"n": 1}
    assert executor.collect(own).exit_code == 7
    assert executor.logs(default, tail=2) == ("", "b\nc\n")
    assert executor.poll([default])[default.id].started_at is not None


def test_a_bad_script_is_refused_before_anything_is_recorded(executor: Executor) -> None:
    job = StandInJob({"dummy": {"outcome": "maybe", "values": []}})
    with pytest.raises(ExecutorError, match=r"'outcome'\] must be one of .*'values'\] must be"):
        executor.submit(job)
    assert dummy.runs(ALIAS) == {}


def test_reset_and_a_settings_change_forget_every_run(executor: Executor, settings: Any) -> None:
    job = StandInJob({})
    executor.submit(job)
    dummy.reset()
    assert executor.poll([job])[job.id].state is RunState.MISSING
    executor.submit(job)
    settings.EXECUTORS = {**settings.EXECUTORS}
    assert dummy.runs(ALIAS) == {}


def test_a_cancelled_run_is_collected_as_cancelled(executor: Executor) -> None:
    job = StandInJob({"dummy": {"outcome": "run"}})
    executor.submit(job)
    executor.poll([job])
    executor.cancel(job)
    assert wait_for_state(executor, job, {RunState.EXITED}, 5).detail == "cancelled"
    assert executor.collect(job).error_message == "cancelled"
