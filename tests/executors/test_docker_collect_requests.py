"""Collecting a finished Docker run asks the engine twice: one inspect (its state) and one
logs request that brings stdout and stderr together, told apart by the engine's frame headers
(the SDK's logs() asked one stream at a time and inspected the container before each: five
requests)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import docker
import pytest

from executors.docker import DockerExecutor, container_name
from tests.executors.test_executor_docker import StandInJob
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.harness.docker_proxy import CountingProxy
from tests.operations_fixtures import TEST_IMAGE

SCRIPT = (
    "echo out-1; echo err-1 >&2; printf 'out-2 no newline'; "
    "head -c 200000 /dev/zero | tr '\\0' e >&2; echo >&2; echo out-3; echo err-2 >&2"
)


def _wait_until_exited(name: str) -> None:
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.containers.get(name).status == "exited":
                return
            time.sleep(0.1)
        pytest.fail("the container did not exit")
    finally:
        client.close()


def test_a_collect_asks_the_engine_for_the_state_and_both_logs_in_two_requests(
    tmp_path: Path,
) -> None:
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("the engine is not on /var/run/docker.sock")
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    with CountingProxy(tmp_path) as proxy:
        executor = DockerExecutor(
            "test-collect-requests",
            {
                "work_root": str(tmp_path / "work"),
                "base_url": f"unix://{proxy.path}",
                "defaults": {"memory_mb": 256, "cpus": 1.0, "pids": 64, "timeout_s": 60},
            },
        )
        job = StandInJob({"image": TEST_IMAGE, "command": SCRIPT, "requires_outputs_json": False})
        try:
            executor.submit(job)
            _wait_until_exited(container_name(job))
            proxy.requests.clear()
            collected = executor.collect(job)
            meta = executor.workdir(job) / ".ferry"
            stdout = (meta / "stdout.log").read_bytes()
            stderr = (meta / "stderr.log").read_bytes()
            asked = [re.sub(r"/v[0-9.]+/", "/", line.split("?")[0]) for line in proxy.requests]
            assert len(asked) == 2, asked
            assert asked[0] == f"GET /containers/{container_name(job)}/json", asked
            assert re.fullmatch(r"GET /containers/[0-9a-f]{64}/logs", asked[1]), asked
        finally:
            executor.cleanup(job)
            executor.remove_workdir(job)
            executor.stop_waiting()
    assert collected.succeeded, collected.error_message
    assert stdout == b"out-1\nout-2 no newlineout-3\n"
    assert stderr == b"err-1\n" + b"e" * 200_000 + b"\nerr-2\n", stderr[:40] + stderr[-40:]
    assert collected.stdout_tail == stdout.decode()
    assert collected.stderr_tail.endswith("err-2\n"), collected.stderr_tail[-50:]


def test_a_collect_right_after_the_poll_that_saw_the_exit_inspects_no_more(
    tmp_path: Path,
) -> None:
    """The poll pass that sees a run exited finalizes it at once: its inspection (an exited
    container's state is final) serves the collect, which then only asks for the logs."""
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("the engine is not on /var/run/docker.sock")
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    with CountingProxy(tmp_path) as proxy:
        executor = DockerExecutor(
            "test-poll-collect-requests",
            {
                "work_root": str(tmp_path / "work"),
                "base_url": f"unix://{proxy.path}",
                "defaults": {"memory_mb": 256, "cpus": 1.0, "pids": 64, "timeout_s": 60},
            },
        )
        job = StandInJob(
            {"image": TEST_IMAGE, "command": "echo hi", "requires_outputs_json": False}
        )
        try:
            executor.submit(job)
            _wait_until_exited(container_name(job))
            proxy.requests.clear()
            observed = executor.poll([job])
            collected = executor.collect(job)
            asked = [re.sub(r"/v[0-9.]+/", "/", line.split("?")[0]) for line in proxy.requests]
            assert len(asked) == 2, asked
            assert asked[0] == f"GET /containers/{container_name(job)}/json", asked
            assert re.fullmatch(r"GET /containers/[0-9a-f]{64}/logs", asked[1]), asked
            proxy.requests.clear()
            executor.collect(job)  # a collect again (a finalize retried) asks the engine anew
            asked = [re.sub(r"/v[0-9.]+/", "/", line.split("?")[0]) for line in proxy.requests]
            assert asked[0] == f"GET /containers/{container_name(job)}/json", asked
        finally:
            executor.cleanup(job)
            executor.remove_workdir(job)
            executor.stop_waiting()
    assert observed[job.id].state.value == "exited", observed
    assert collected.succeeded, collected.error_message
    assert collected.stdout_tail == "hi\n"
