"""The Docker executor names its process (pids) limit when a job dies of it, as it names memory."""
# ruff: noqa: F811  (pytest fixtures imported from tests.executors.test_executor_docker)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executors.docker import DockerExecutor
from tests.executors.test_executor_docker import (  # noqa: F401
    alias,
    executor,
    image,
    make_job,
    run,
)


def test_process_limit_is_named(executor: DockerExecutor, make_job: Callable[..., Any]) -> None:
    job = make_job(
        "echo forking >&2; for i in $(seq 1 40); do sleep 5 & done; wait",
        limits={"pids": 8},
    )
    collected = run(executor, job)
    assert not collected.succeeded
    assert collected.error_message.startswith("stopped by its process limit (pids_limit=8)")
    assert "can't fork" in collected.error_message  # stderr's last lines still follow
    assert "pids_limit=8" in collected.error_detail


def test_other_failures_do_not_blame_the_process_limit(
    executor: DockerExecutor, make_job: Callable[..., Any]
) -> None:
    collected = run(executor, make_job("echo 'no such table' >&2; exit 3"))
    assert collected.error_message.startswith("exited with status 3")
