"""The miniwdl executor keeps the executor contract (real miniwdl runs on the local swarm)."""

from __future__ import annotations

from typing import Any

from executors.base import Executor, RunnableJob
from executors.miniwdl import MiniwdlExecutor
from tests.executors.contract import ExecutorContract
from tests.executors.test_executor_miniwdl import (
    PROCESS_JSON,
    WDL_DIR,
    StandInJob,
    executor,
    recorded_pid,
    swarm,
    wdl_spec,
)

__all__ = ["executor", "swarm"]  # the fixtures of tests/executors/test_executor_miniwdl.py


class TestMiniwdlContract(ExecutorContract):
    wait_s = 120.0  # a one-task workflow takes ~3-5 s
    quick_values = {"greeting": "hello ferry"}
    quick_files = {"said": 1}

    def quick_job(self) -> RunnableJob:
        outputs = {"greeting": {"type": "string"}, "said": {"type": "file", "many": False}}
        return StandInJob(wdl_spec("greet_file.wdl", {"wf.who": "ferry"}, outputs=outputs))

    def failing_job(self) -> RunnableJob:
        return StandInJob(wdl_spec("fail.wdl", {"wf.reads": str(WDL_DIR / "hello.wdl")}))

    def long_job(self) -> RunnableJob:
        return StandInJob(wdl_spec("sleep.wdl"))

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        assert isinstance(executor, MiniwdlExecutor)
        assert isinstance(job, StandInJob)
        if not (executor.run_dir(job) / PROCESS_JSON).exists():
            return None
        return recorded_pid(executor, job)
