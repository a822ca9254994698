"""The Cromwell executor keeps the executor contract, against the Cromwell test server's
simulated mode (workflows move along its clock; the test sets how long they take and whether
they fail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from executors.base import Executor, RunnableJob
from executors.cromwell import CromwellExecutor
from tests.executors.contract import ExecutorContract
from tests.executors.test_executor_cromwell import (
    FAILING_WDL,
    SIM_OUTPUTS,
    SIM_WDL,
    SLEEPING_WDL,
    executor_for,
    real,
    sim,
    wdl_job,
)

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

__all__ = ["real", "sim"]  # the fixtures of tests/executors/test_executor_cromwell.py


@pytest.fixture
def executor(sim: CromwellServer) -> Executor:
    sim.settings(sim_start_s=0.1, sim_run_s=0.3)
    # No grace for workflows Cromwell never heard of: three 404s in a row make them MISSING.
    return executor_for(sim, post_submit_grace_s=0, fail_unknown_after_s=0)


class TestCromwellContract(ExecutorContract):
    wait_s = 30.0  # a simulated run takes 0.4 s
    unknown_polls = 3
    quick_values = {"n": 1}
    quick_files = {"report": 1, "parts": 2}

    @pytest.fixture(autouse=True)
    def _server(self, sim: CromwellServer) -> None:
        self.server = sim

    def quick_job(self) -> RunnableJob:
        return wdl_job(SIM_WDL, "sim", outputs=SIM_OUTPUTS)

    def failing_job(self) -> RunnableJob:
        self.server.settings(sim_fail_fraction=1.0)
        return wdl_job(SIM_WDL, "sim", outputs=SIM_OUTPUTS)

    def long_job(self) -> RunnableJob:
        self.server.settings(sim_run_s=600.0)
        return wdl_job(SIM_WDL, "sim", outputs=SIM_OUTPUTS)

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        assert isinstance(executor, CromwellExecutor)
        return [row["id"] for row in executor.client.query_ids([str(job.id)])]


@pytest.mark.slow
class TestCromwellRealRunsContract(ExecutorContract):
    """The same against the server running workflows for real (miniwdl on the local Docker
    engine, outputs in a moto bucket)."""

    wait_s = 120.0  # a one-task workflow takes ~5 s
    quick_values: ClassVar[dict[str, Any]] = {}
    quick_files = {"never": 1}

    @pytest.fixture
    def executor(self, real: CromwellServer) -> Executor:
        return executor_for(real, post_submit_grace_s=0, fail_unknown_after_s=0)

    unknown_polls = 3

    def quick_job(self) -> RunnableJob:
        made = FAILING_WDL.replace("exit 3", "echo made > nothing.txt")
        return wdl_job(made, "breaks", outputs={"never": {"type": "file"}})

    def failing_job(self) -> RunnableJob:
        return wdl_job(FAILING_WDL, "breaks", outputs={"never": {"type": "file"}})

    def long_job(self) -> RunnableJob:
        return wdl_job(SLEEPING_WDL, "sleeper", outputs={"done": {"type": "string"}})

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        assert isinstance(executor, CromwellExecutor)
        return [row["id"] for row in executor.client.query_ids([str(job.id)])]
