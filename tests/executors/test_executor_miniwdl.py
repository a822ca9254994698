"""The miniwdl executor, running real workflows with miniwdl on the real Docker engine (swarm)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import pytest

from executors import registry
from executors.base import Collected, ExecutorError, RunState
from executors.checks import check_executors
from executors.miniwdl import (
    PROCESS_JSON,
    MiniwdlExecutor,
    ProcessRecord,
    describe_failure,
    is_alive,
    run_state,
)
from tests.harness.docker import (
    DockerHarnessError,
    ensure_busybox_image,
    ensure_docker,
    ensure_swarm,
)

WDL_DIR = Path(__file__).parent / "executor_miniwdl_wdl"
WAIT_S = 120


@dataclass
class StandInJob:
    """What an executor needs of a job (operations.models.Job has these attributes)."""

    run_spec: dict[str, Any]
    id: UUID = field(default_factory=uuid.uuid4)


def wdl_spec(main: str, inputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "workflow_dir": str(WDL_DIR),
        "main": main,
        "workflow_name": "wf",
        "inputs": inputs or {},
        "outputs": {},
        **extra,
    }


def make_executor(work_root: Path, **options: Any) -> MiniwdlExecutor:
    return MiniwdlExecutor(
        "test-miniwdl",
        {"work_root": str(work_root), "defaults": {"timeout_s": 600}, **options},
    )


def wait_until_exited(executor: MiniwdlExecutor, job: StandInJob) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        observation = executor.poll([job])[job.id]
        assert observation.state in (RunState.RUNNING, RunState.EXITED), observation
        if observation.state is RunState.EXITED:
            return
        time.sleep(0.3)
    pytest.fail(f"the run did not finish within {WAIT_S} s")


def run_to_end(executor: MiniwdlExecutor, job: StandInJob) -> Collected:
    executor.submit(job)
    wait_until_exited(executor, job)
    return executor.collect(job)


def recorded_pid(executor: MiniwdlExecutor, job: StandInJob) -> int:
    return int(json.loads((executor.run_dir(job) / PROCESS_JSON).read_text())["pid"])


def record_of(executor: MiniwdlExecutor, job: StandInJob) -> ProcessRecord:
    return ProcessRecord(**json.loads((executor.run_dir(job) / PROCESS_JSON).read_text()))


def wait_for_task_container(executor: MiniwdlExecutor, job: StandInJob) -> None:
    """Until the sleeping task's container runs (so cancel has something to remove)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        services, containers = executor.leftovers(executor.run_dir(job))
        if services and any(c.status == "running" for c in containers):
            return
        time.sleep(0.3)
    pytest.fail("the task's container never started")


@pytest.fixture(scope="session")
def swarm() -> None:
    try:
        ensure_docker()
        ensure_busybox_image()
        ensure_swarm()
    except DockerHarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def executor(swarm: None, tmp_path: Path) -> MiniwdlExecutor:
    return make_executor(tmp_path / "work")


@pytest.fixture
def reads(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "reads.txt"
    path.parent.mkdir()
    path.write_text("a\nb\nc\n")
    return path


# -- without the engine -----------------------------------------------------------------------


def test_run_state_mapping() -> None:
    assert run_state(recorded=False, alive=False) is RunState.MISSING
    assert run_state(recorded=True, alive=True) is RunState.RUNNING
    assert run_state(recorded=True, alive=False) is RunState.EXITED


def test_options_are_checked(tmp_path: Path) -> None:
    assert MiniwdlExecutor.check_options({"work_root": str(tmp_path)}) == []
    problems = MiniwdlExecutor.check_options(
        {
            "work_root": "relative/dir",
            "defaults": {"timeout_s": 0, "memory_mb": 5},
            "max_concurrent_tasks": -1,
            "docker_image_default": 3,
        }
    )
    assert any("work_root" in p for p in problems)
    assert any("'timeout_s'" in p for p in problems)
    assert any("memory_mb" in p for p in problems)
    assert any("max_concurrent_tasks" in p for p in problems)
    assert any("docker_image_default" in p for p in problems)
    with pytest.raises(ExecutorError, match="misconfigured"):
        MiniwdlExecutor("x", {"work_root": "nope"})


def test_registry_and_system_check(settings: Any, tmp_path: Path) -> None:
    settings.EXECUTORS = {
        "local-miniwdl": {
            "BACKEND": "executors.miniwdl.MiniwdlExecutor",
            "OPTIONS": {"work_root": str(tmp_path), "defaults": {"timeout_s": 60}},
        },
        "bad-miniwdl": {
            "BACKEND": "executors.miniwdl.MiniwdlExecutor",
            "OPTIONS": {"work_root": "relative"},
        },
    }
    settings.EXECUTOR_ROUTING = {"wdl": "local-miniwdl"}
    assert isinstance(registry.executor_for_mode("wdl"), MiniwdlExecutor)
    errors = check_executors()
    assert [e.id for e in errors] == ["ferry.E005"]
    assert "bad-miniwdl" in errors[0].msg


def test_bad_run_specs_are_refused_before_anything_starts(tmp_path: Path) -> None:
    executor = make_executor(tmp_path / "work", ceilings={"timeout_s": 900})
    cases = [
        ({**wdl_spec("hello.wdl"), "workflow_dir": "relative"}, "workflow_dir"),
        ({**wdl_spec("hello.wdl"), "workflow_dir": str(tmp_path / "gone")}, "missing"),
        (wdl_spec("absent.wdl"), "no file absent.wdl"),
        (wdl_spec("../test_executor_miniwdl.py"), "no file"),
        (wdl_spec("/etc/passwd"), "relative"),
        ({**wdl_spec("hello.wdl"), "workflow_name": "wf; rm"}, "workflow_name"),
        (wdl_spec("hello.wdl", limits={"timeout_s": 901}), "ceiling of 900"),
        (wdl_spec("hello.wdl", limits={"memory_mb": 1}), "unknown resource limit"),
        (wdl_spec("hello.wdl", inputs=["x"]), "inputs"),  # type: ignore[arg-type]
    ]
    for spec, message in cases:
        with pytest.raises(ExecutorError, match=message):
            executor.submit(StandInJob(spec))
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_unknown_runs(tmp_path: Path) -> None:
    executor = make_executor(tmp_path / "work")
    job = StandInJob(wdl_spec("hello.wdl"))
    assert executor.poll([job])[job.id].state is RunState.MISSING
    assert executor.poll([]) == {}
    executor.cancel(job)
    executor.cleanup(job)
    assert executor.logs(job) == ("", "")
    collected = executor.collect(job)
    assert not collected.succeeded
    assert "disappeared" in collected.error_message


def test_config_file(tmp_path: Path) -> None:
    text = make_executor(
        tmp_path, max_concurrent_tasks=3, docker_image_default="ferry/busybox:latest"
    ).config_text()
    assert "auto_init = true" in text
    assert "command_shell = /bin/sh" in text
    assert "task_concurrency = 3" in text
    assert "allow_any_input = false" in text
    assert 'defaults = {"docker": "ferry/busybox:latest"}' in text


def test_describe_failure_of_a_subworkflow_call(tmp_path: Path) -> None:
    call_dir = tmp_path / "call-sub" / "call-align"
    call_dir.mkdir(parents=True)
    (call_dir / "stderr.txt").write_text("oops\n")
    (call_dir / "error.json").write_text(json.dumps({"task": "align"}))
    error = {
        "error": "RunFailed",
        "workflow": "wf",
        "cause": {
            "error": "RunFailed",
            "run": "call-sub",
            "dir": str(tmp_path / "call-sub"),
            "cause": {
                "error": "CommandFailed",
                "exit_status": 7,
                "run": "call-align",
                "dir": str(call_dir),
                "stderr_file": str(call_dir / "stderr.txt"),
            },
        },
    }
    failure = describe_failure(error, tmp_path)
    assert failure.headline == 'task "align" (call-align) failed with exit status 7'
    assert failure.exit_code == 7
    assert failure.stderr_file == call_dir / "stderr.txt"
    outside = {"error": "CommandFailed", "run": "call-x", "stderr_file": "/etc/passwd"}
    assert describe_failure(outside, tmp_path).stderr_file is None
    assert "unreadable" in describe_failure("junk", tmp_path).headline


# -- real runs --------------------------------------------------------------------------------


@pytest.mark.slow
def test_success_with_file_int_and_scattered_outputs(
    executor: MiniwdlExecutor, reads: Path
) -> None:
    spec = wdl_spec(
        "count.wdl",
        {"wf.reads": str(reads), "wf.parts": 2},
        outputs={
            "copy": {"type": "file"},
            "lines": {"type": "integer"},
            "part_files": {"type": "file", "many": True},
            "skipped": {"type": "file"},
        },
    )
    job = StandInJob(spec)
    assert executor.submit(job) == f"miniwdl:{job.id}"
    wait_until_exited(executor, job)
    assert executor.poll([job])[job.id].detail == "succeeded"
    collected = executor.collect(job)
    assert collected.succeeded, collected.error_detail
    assert collected.values == {"lines": 3}
    assert set(collected.files) == {"copy", "part_files"}
    (copy,) = collected.files["copy"]
    assert copy.read_text() == reads.read_text()
    assert copy.is_relative_to(executor.run_dir(job))
    assert [p.read_text() for p in collected.files["part_files"]] == ["part 0\n", "part 1\n"]
    assert "done" in collected.stdout_tail  # miniwdl's progress log
    progress, _ = executor.logs(job, tail=5)
    assert 0 < len(progress.splitlines()) <= 5
    assert executor.logs(job, tail=0) == ("", "")
    assert not is_alive(record_of(executor, job))

    executor.cleanup(job)
    assert not executor.run_dir(job).exists()
    executor.cleanup(job)  # idempotent
    assert executor.poll([job])[job.id].state is RunState.MISSING


@pytest.mark.slow
def test_a_failing_task_is_named_with_its_status_and_stderr(
    executor: MiniwdlExecutor, reads: Path
) -> None:
    job = StandInJob(wdl_spec("fail.wdl", {"wf.reads": str(reads)}))
    collected = run_to_end(executor, job)
    assert not collected.succeeded
    assert collected.error_message == (
        'task "count_lines" (call-count_lines) failed with exit status 1: '
        "count_lines: no lines to count"
    )
    assert collected.exit_code == 1
    assert "reading " in collected.stderr_tail
    assert "count_lines: no lines to count" in collected.stderr_tail
    assert "CommandFailed" in collected.error_detail
    assert executor.logs(job)[1] == collected.stderr_tail
    assert executor.poll([job])[job.id].detail == "failed"


@pytest.mark.slow
def test_a_workflow_miniwdl_rejects_reports_what_miniwdl_said(
    executor: MiniwdlExecutor, tmp_path: Path
) -> None:
    broken = run_to_end(executor, StandInJob(wdl_spec("broken.wdl")))
    assert not broken.succeeded
    assert broken.error_message.startswith("miniwdl stopped without a result: ")
    missing = run_to_end(
        executor, StandInJob(wdl_spec("fail.wdl", {"wf.reads": str(tmp_path / "nope.txt")}))
    )
    assert missing.error_message.startswith("miniwdl stopped without a result: ")
    assert "nope.txt" in missing.error_message


@pytest.mark.slow
def test_cancel_stops_miniwdl_and_leaves_no_service_or_container(
    executor: MiniwdlExecutor,
) -> None:
    job = StandInJob(wdl_spec("sleep.wdl"))
    executor.submit(job)
    wait_for_task_container(executor, job)
    assert executor.poll([job])[job.id].state is RunState.RUNNING

    executor.cancel(job)
    assert not is_alive(record_of(executor, job))
    run_dir = str(executor.run_dir(job))
    client = docker.from_env()
    try:
        for service in client.services.list(filters={"label": "miniwdl_run_id"}):
            mounts = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
            assert not any(m["Source"].startswith(run_dir) for m in mounts)
        for container in client.containers.list(all=True, filters={"label": "miniwdl_run_id"}):
            assert not any(m["Source"].startswith(run_dir) for m in container.attrs["Mounts"])
    finally:
        client.close()
    assert executor.poll([job])[job.id].state is RunState.EXITED
    executor.cancel(job)  # already gone: not an error
    executor.cleanup(job)
    assert not executor.run_dir(job).exists()


@pytest.mark.slow
def test_submit_is_idempotent(executor: MiniwdlExecutor) -> None:
    job = StandInJob(wdl_spec("hello.wdl", {"wf.who": "ferry"}))
    first = executor.submit(job)
    pid = recorded_pid(executor, job)
    assert executor.submit(job) == first
    assert recorded_pid(executor, job) == pid
    wait_until_exited(executor, job)
    assert executor.submit(job) == first  # a finished run is not started again
    assert recorded_pid(executor, job) == pid
    assert executor.collect(job).values == {"greeting": "hello ferry"}


@pytest.mark.slow
def test_a_submit_that_died_before_recording_its_process_is_not_started_twice(
    executor: MiniwdlExecutor,
) -> None:
    job = StandInJob(wdl_spec("sleep.wdl"))
    executor.submit(job)
    pid = recorded_pid(executor, job)
    (executor.run_dir(job) / PROCESS_JSON).unlink()  # as if the worker died right after Popen
    assert executor.poll([job])[job.id].state is RunState.MISSING
    executor.submit(job)
    assert recorded_pid(executor, job) == pid  # found by its command line and adopted
    assert executor.poll([job])[job.id].state is RunState.RUNNING
    executor.cancel(job)
    assert not is_alive(record_of(executor, job))
    executor.cleanup(job)


@pytest.mark.slow
def test_a_new_worker_adopts_the_run(swarm: None, tmp_path: Path) -> None:
    first = make_executor(tmp_path / "work")
    job = StandInJob(wdl_spec("hello.wdl"))
    first.submit(job)
    assert first.poll([job])[job.id].state in (RunState.RUNNING, RunState.EXITED)
    del first  # the worker "dies"; its miniwdl process runs on

    second = make_executor(tmp_path / "work")
    wait_until_exited(second, job)
    collected = second.collect(job)
    assert collected.succeeded, collected.error_detail
    assert collected.values == {"greeting": "hello world"}


@pytest.mark.slow
def test_a_run_past_its_deadline_is_stopped_and_reported(executor: MiniwdlExecutor) -> None:
    job = StandInJob(wdl_spec("sleep.wdl", limits={"timeout_s": 1}))
    executor.submit(job)
    wait_until_exited(executor, job)
    collected = executor.collect(job)
    assert not collected.succeeded
    assert collected.error_message == "timed out after 1 s"
    assert not is_alive(record_of(executor, job))
    assert executor.leftovers(executor.run_dir(job)) == ([], [])
    executor.cleanup(job)
