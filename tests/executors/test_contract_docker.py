"""The local Docker executor keeps the executor contract (real engine, busybox image)."""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import pytest

from executors.base import Executor, RunnableJob
from executors.docker import container_name
from tests.executors.contract import ExecutorContract
from tests.executors.test_executor_docker import StandInJob, alias, executor, image

__all__ = ["alias", "executor", "image"]  # the fixtures of tests/executors/test_executor_docker.py


class TestDockerContract(ExecutorContract):
    wait_s = 60.0  # a busybox run takes ~1 s
    quick_values = {"answer": 42}
    quick_files = {"said": 1}

    @pytest.fixture(autouse=True)
    def _image(self, image: str) -> None:
        self.image = image

    def quick_job(self) -> RunnableJob:
        return StandInJob(
            {
                "image": self.image,
                "command": "echo hi > said.txt; "
                'echo \'{"answer": 42, "said": "said.txt"}\' > outputs.json',
                "file_outputs": ["said"],
            }
        )

    def failing_job(self) -> RunnableJob:
        return StandInJob({"image": self.image, "command": "echo 'no lines to count' >&2; exit 3"})

    def long_job(self) -> RunnableJob:
        return StandInJob({"image": self.image, "command": "sleep 120"})

    def run_identity(self, executor: Executor, job: RunnableJob) -> Any:
        client = docker.from_env()
        try:
            return client.containers.get(container_name(job)).id
        except docker.errors.NotFound:
            return None
        finally:
            client.close()
