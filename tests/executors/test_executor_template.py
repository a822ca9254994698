"""What the executor base class does for every backend: its public methods turn the backend's
library errors into the executor error family, and optional capabilities (building and pushing
images) are declared on the class with the defaults of executors that lack them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from executors.base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    ImageBuild,
    Observation,
    RunnableJob,
)
from executors.cromwell.executor import CromwellExecutor
from executors.docker import DockerExecutor
from executors.dummy import DummyExecutor
from executors.miniwdl import MiniwdlExecutor
from tests.executors.test_executor_docker import StandInJob


class RefusedEngine(Executor):
    """A backend whose engine refuses every connection (its library raises as it is), or
    whose code has a bug (``bug``: a ValueError, which is not a backend error)."""

    engine_name = "The refusing engine"

    def _fail(self) -> Any:
        if self.options.get("bug"):
            raise ValueError("a bug in the backend")
        raise ConnectionError("wrapped") from ConnectionRefusedError(111, "Connection refused")

    def _submit(self, job: RunnableJob) -> str:
        return str(self._fail())

    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        return dict(self._fail())

    def _cancel(self, job: RunnableJob) -> None:
        self._fail()

    def _collect(self, job: RunnableJob) -> Collected:
        return Collected(succeeded=self._fail())

    def _logs(self, job: RunnableJob, *, tail: int | None) -> tuple[str, str]:
        return tuple(self._fail())

    def _cleanup(self, job: RunnableJob) -> None:
        self._fail()


def _public_calls(executor: Executor, job: RunnableJob) -> dict[str, Any]:
    return {
        "start the run": lambda: executor.submit(job),
        "list runs": lambda: executor.poll([job]),
        "stop the run": lambda: executor.cancel(job),
        "read the run's outcome": lambda: executor.collect(job),
        "read the run's logs": lambda: executor.logs(job),
        "clean up the run": lambda: executor.cleanup(job),
    }


def test_backend_errors_reach_callers_as_executor_unavailable_in_plain_words() -> None:
    executor, job = RefusedEngine("refusing", {}), StandInJob({})
    for action, call in _public_calls(executor, job).items():
        with pytest.raises(ExecutorUnavailable) as caught:
            call()
        assert str(caught.value) == (
            f"the refusing engine can't be reached to {action}: the connection was refused"
        )
        assert isinstance(caught.value.__cause__, ConnectionError)


def test_a_bug_in_a_backend_is_not_hidden_as_an_engine_error() -> None:
    executor, job = RefusedEngine("buggy", {"bug": True}), StandInJob({})
    for call in _public_calls(executor, job).values():
        with pytest.raises(ValueError, match="a bug in the backend"):
            call()


def test_an_unreachable_docker_engine_is_an_executor_error(settings: Any, tmp_path: Path) -> None:
    options = {
        **settings.EXECUTORS["local-docker"]["OPTIONS"],
        "work_root": str(tmp_path),
        "base_url": f"unix://{tmp_path}/no-docker.sock",
    }
    executor = DockerExecutor("nowhere", options)
    job = StandInJob({"image": "ferry/busybox:latest", "command": "true"})
    for action, call in _public_calls(executor, job).items():
        if action == "stop the run" or action == "clean up the run":
            continue  # nothing to stop or remove is not an error… once the engine answers
        with pytest.raises(ExecutorUnavailable, match="socket does not exist"):
            call()
    build = ImageBuild(tmp_path, "Dockerfile", "ferry-test/nowhere:1", {}, lambda step: None)
    with pytest.raises(ExecutorUnavailable, match="socket does not exist"):
        executor.build_image(build)


@pytest.mark.parametrize(
    ("backend", "builds"),
    [
        (DockerExecutor, True),
        (MiniwdlExecutor, True),
        (CromwellExecutor, False),
        (DummyExecutor, False),
    ],
)
def test_image_building_is_a_declared_capability(backend: type[Executor], builds: bool) -> None:
    assert backend.builds_images is builds
    assert backend.pushes_images is False  # all of today's engines read the local image store


def test_executors_without_the_capability_refuse_to_build_or_push(tmp_path: Path) -> None:
    executor = DummyExecutor("dummy-build", {})
    build = ImageBuild(tmp_path, "Dockerfile", "ferry-test/none:1", {}, lambda step: None)
    with pytest.raises(ExecutorError, match="does not build images"):
        executor.build_image(build)
    with pytest.raises(ExecutorError, match="does not push images"):
        executor.push_image("ferry-test/none:1")
