"""The local Docker executor, against a real engine with a busybox image built locally."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import docker.errors
import pytest
from django.core.exceptions import ImproperlyConfigured

from executors import registry
from executors.base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Observation,
    RunState,
)
from executors.checks import check_executors
from executors.docker import (
    INSPECT_AT_MOST,
    DockerExecutor,
    OutputPathError,
    container_name,
    resolve_output_path,
    run_state,
)
from tests.harness.docker import DockerHarnessError, ensure_busybox_image, ensure_docker

WAIT_S = 30


@dataclass
class StandInJob:
    """What an executor needs of a job (operations.models.Job has these attributes)."""

    run_spec: dict[str, Any]
    id: UUID = field(default_factory=uuid.uuid4)
    attempts: int = 0  # how often it was submitted before


@pytest.fixture(scope="session")
def image() -> str:
    try:
        ensure_docker()
        return ensure_busybox_image()
    except DockerHarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def alias() -> str:
    return f"test-docker-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def executor(image: str, alias: str, settings: Any, tmp_path: Path) -> Iterator[DockerExecutor]:
    settings.EXECUTORS = {
        alias: {
            "BACKEND": "executors.docker.DockerExecutor",
            "OPTIONS": {
                "work_root": str(tmp_path / "work"),
                "defaults": {"memory_mb": 256, "cpus": 1.0, "pids": 64, "timeout_s": 60},
                "ceilings": {"memory_mb": 1024, "cpus": 2.0, "pids": 256, "timeout_s": 600},
            },
        }
    }
    settings.EXECUTOR_ROUTING = {"docker": alias}
    executor = registry.get_executor(alias)
    assert isinstance(executor, DockerExecutor)
    yield executor
    executor.stop_waiting()
    client = docker.from_env()
    for container in client.containers.list(
        all=True, sparse=True, filters={"label": f"ferry.executor={alias}"}
    ):
        container.remove(force=True)
    client.close()


@pytest.fixture
def make_job(image: str) -> Callable[..., StandInJob]:
    def make(command: str, **spec: Any) -> StandInJob:
        return StandInJob(run_spec={"image": image, "command": command, **spec})

    return make


def wait_for(
    executor: Executor, job: StandInJob, states: set[RunState], timeout: float = WAIT_S
) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        observation = executor.poll([job])[job.id]
        if observation.state in states:
            return observation
        if time.monotonic() > deadline:
            pytest.fail(f"job still {observation} after {timeout} s")
        time.sleep(0.1)


def run(executor: DockerExecutor, job: StandInJob) -> Collected:
    executor.submit(job)
    wait_for(executor, job, {RunState.EXITED})
    return executor.collect(job)


def engine() -> Any:
    return docker.from_env()


# -- runs -------------------------------------------------------------------------------------


def test_success_returns_values_and_files(executor, make_job):
    job = make_job(
        "mkdir -p sub && printf 'a\\tb\\n' > summary.tsv && echo x > sub/one.txt && "
        "echo y > sub/two.txt && echo done && "
        'printf \'{"summary": "summary.tsv", "count": 3, "label": "hello", '
        '"parts": ["/work/sub/one.txt", "sub/two.txt"]}\' > outputs.json',
        file_outputs=["summary", "parts"],
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    assert collected.exit_code == 0
    workdir = executor.workdir(job)
    assert collected.values == {
        "summary": "summary.tsv",
        "count": 3,
        "label": "hello",
        "parts": ["/work/sub/one.txt", "sub/two.txt"],
    }
    assert collected.files == {
        "summary": [workdir / "summary.tsv"],
        "parts": [workdir / "sub" / "one.txt", workdir / "sub" / "two.txt"],
    }
    assert collected.files["summary"][0].read_text() == "a\tb\n"
    assert collected.stdout_tail == "done\n"


def test_arguments_arrive_literally(executor, make_job):
    hostile = "x; rm -rf / $(id) `id` && echo pwned"
    job = make_job(f"echo {shlex.quote(hostile)} > arg.txt && echo '{{}}' > outputs.json")
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    assert (executor.workdir(job) / "arg.txt").read_text() == hostile + "\n"


def test_no_network(executor, make_job):
    connections: list[Any] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        job = make_job(
            "cat /proc/net/dev > netdev.txt; readlink /proc/self/ns/net > netns.txt; "
            "nc -w 1 localhost 1 > names.txt 2>&1; nc -w 1 $(hostname) 1 >> names.txt 2>&1; "
            f"if nc -w 2 127.0.0.1 {port} </dev/null; then echo connected; else echo refused; fi "
            "> nc.txt; echo '{}' > outputs.json"
        )
        collected = run(executor, job)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert collected.succeeded, collected.error_detail
    workdir = executor.workdir(job)
    interfaces = [
        line.split(":")[0].strip()
        for line in (workdir / "netdev.txt").read_text().splitlines()[2:]
        if line.strip()
    ]
    assert interfaces == ["lo"]
    # A network namespace of its own (NetworkDisabled leaves the engine's set-up out, not it).
    assert (workdir / "netns.txt").read_text().strip() != os.readlink("/proc/self/ns/net")
    assert (workdir / "nc.txt").read_text() == "refused\n"
    assert connections == []
    # "localhost" and the run's own name still resolve, to the loopback (an /etc/hosts that
    # Ferry mounts: the engine writes none without its network set-up).
    names = (workdir / "names.txt").read_text()
    assert "bad address" not in names
    assert names.count("(127.0.0.1): Connection refused") == 2, names
    config = engine().containers.get(container_name(job)).attrs
    assert config["HostConfig"]["NetworkMode"] == "none"
    assert config["Config"]["NetworkDisabled"] is True


def test_out_of_memory_is_reported(executor, make_job):
    job = make_job(
        "echo filling memory >&2; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
        limits={"memory_mb": 32},
    )
    collected = run(executor, job)
    assert not collected.succeeded
    assert collected.error_message.startswith("ran out of memory (limit 32 MiB)")
    assert "filling memory" in collected.error_message
    assert "filling memory" in collected.error_detail


def test_timeout_is_enforced_by_poll(executor, make_job):
    job = make_job("echo started >&2; sleep 60", limits={"timeout_s": 2})
    started = time.monotonic()
    executor.submit(job)
    observation = wait_for(executor, job, {RunState.EXITED}, timeout=15)
    assert 2 <= time.monotonic() - started < 10
    assert observation.detail == "timed out after 2 s"
    collected = executor.collect(job)
    assert not collected.succeeded
    assert collected.error_message.startswith("timed out after 2 s")
    assert "started" in collected.error_detail


def test_sandbox(executor, make_job, tmp_path):
    table = tmp_path / "counts.tsv"
    table.write_text("gene\tcount\n")
    job = make_job(
        "id -u > uid.txt; id -g >> uid.txt; "
        "cat /inputs/table/counts.tsv > copy.tsv; "
        "for p in /etc/x /etc/hosts /x /inputs/table/counts.tsv /inputs/table/new /bin/sh; do "
        '  if touch $p 2>/dev/null; then echo "$p writable"; else echo "$p refused"; fi; '
        "done > writes.txt; "
        "touch /tmp/ok && mkdir -p /work/d && touch /work/d/ok && echo fine > fine.txt; "
        "echo '{}' > outputs.json",
        mounts=[{"source": str(table), "target": "/inputs/table/counts.tsv"}],
        limits={"memory_mb": 64, "cpus": 0.5, "pids": 32},
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    workdir = executor.workdir(job)
    assert (workdir / "uid.txt").read_text() == "65534\n65534\n"
    assert (workdir / "copy.tsv").read_text() == "gene\tcount\n"
    assert (workdir / "writes.txt").read_text().splitlines() == [
        "/etc/x refused",
        "/etc/hosts refused",
        "/x refused",
        "/inputs/table/counts.tsv refused",
        "/inputs/table/new refused",
        "/bin/sh refused",
    ]
    assert (workdir / "fine.txt").read_text() == "fine\n"
    assert table.read_text() == "gene\tcount\n"
    host_config = engine().containers.get(container_name(job)).attrs["HostConfig"]
    assert host_config["NetworkMode"] == "none"
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["SecurityOpt"] == ["no-new-privileges"]
    assert host_config["Memory"] == host_config["MemorySwap"] == 64 * 1024 * 1024
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["PidsLimit"] == 32


def test_cancel_removes_a_running_container(executor, make_job):
    job = make_job("sleep 60")
    executor.submit(job)
    wait_for(executor, job, {RunState.RUNNING})
    started = time.monotonic()
    executor.cancel(job)
    assert time.monotonic() - started < 5
    with pytest.raises(docker.errors.NotFound):
        engine().containers.get(container_name(job))
    assert executor.poll([job])[job.id].state is RunState.MISSING
    executor.cancel(job)  # already gone: not an error


def test_submit_is_idempotent(executor, make_job, alias):
    job = make_job("sleep 60")
    first = executor.submit(job)
    second = executor.submit(job)
    assert first == second
    containers = engine().containers.list(all=True, filters={"label": f"ferry.job={job.id}"})
    assert [c.id for c in containers] == [first]
    assert containers[0].labels["ferry.executor"] == alias
    assert int(containers[0].labels["ferry.deadline"]) > time.time()


def test_missing_outputs_json(executor, make_job):
    collected = run(executor, make_job("echo hi"))
    assert not collected.succeeded
    assert collected.error_message == "the operation finished without writing /work/outputs.json"
    assert collected.stdout_tail == "hi\n"


def test_invalid_outputs_json(executor, make_job):
    collected = run(executor, make_job("echo '{\"a\": ' > outputs.json"))
    assert not collected.succeeded
    assert collected.error_message.startswith("/work/outputs.json is not valid JSON")
    collected = run(executor, make_job("echo '[1, 2]' > outputs.json"))
    assert not collected.succeeded
    assert "must hold a JSON object" in collected.error_message


def test_output_naming_a_file_not_written(executor, make_job):
    job = make_job('echo \'{"summary": "summary.json"}\' > outputs.json', file_outputs=["summary"])
    collected = run(executor, job)
    assert not collected.succeeded
    assert collected.error_message == (
        "output 'summary' names summary.json, which the operation did not write"
    )


@pytest.mark.parametrize(
    ("setup", "ref", "problem"),
    [
        ("true", "../../etc/passwd", "which is outside /work"),
        ("true", "/etc/passwd", "which is outside /work"),
        ("true", "/work/../etc/passwd", "which is outside /work"),
        ("ln -s /etc/passwd link", "link", "which is outside /work"),
        ("ln -s ../../../../../../etc/passwd link", "link", "which is outside /work"),
        ("mkdir d", "d", "which is not a regular file"),
        ("true", "/work/.ferry/state.json", "which is outside /work"),
    ],
)
def test_output_paths_escaping_work_fail(executor, make_job, setup, ref, problem):
    outputs = shlex.quote(json.dumps({"table": ref}))
    job = make_job(f"{setup} && echo {outputs} > outputs.json", file_outputs=["table"])
    collected = run(executor, job)
    assert not collected.succeeded
    assert collected.error_message == f"output 'table' names {ref}, {problem}"


def test_undeclared_outputs_never_name_files_outside_work(executor, make_job):
    outputs = {"a": "link", "b": "../../etc/passwd", "c": "/etc/passwd", "d": "words", "e": "f"}
    job = make_job(
        f"ln -s /etc/passwd link && echo x > f && echo {shlex.quote(json.dumps(outputs))} "
        "> outputs.json"
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    assert collected.values == outputs
    assert collected.files == {"e": [executor.workdir(job) / "f"]}


def test_symlinks_inside_work_are_followed_as_the_container_would(executor, make_job):
    job = make_job(
        "mkdir -p a/b && echo x > a/b/real.txt && ln -s /work/a/b/real.txt abs && "
        'ln -s a/b rel && echo \'{"abs": "abs", "rel": "rel/real.txt"}\' > outputs.json',
        file_outputs=["abs", "rel"],
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    real = executor.workdir(job) / "a" / "b" / "real.txt"
    assert collected.files == {"abs": [real], "rel": [real]}


def test_nonzero_exit(executor, make_job):
    job = make_job("echo to stdout; for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3")
    collected = run(executor, job)
    assert not collected.succeeded
    assert collected.exit_code == 3
    assert collected.error_message.startswith("exited with status 3")
    assert "line7" in collected.error_message
    assert "line3" in collected.error_message
    assert "line1" not in collected.error_message  # only the last few lines
    assert "line1" in collected.error_detail
    assert collected.stderr_tail.endswith("line7\n")
    assert collected.stdout_tail == "to stdout\n"


def test_missing_image(executor):
    job = StandInJob(run_spec={"image": "ferry-op/nope:0.0.0", "command": "true"})
    with pytest.raises(ExecutorError, match=r"image ferry-op/nope:0.0.0 is not available"):
        executor.submit(job)
    assert executor.poll([job])[job.id].state is RunState.MISSING


def test_limits_above_ceiling_are_refused(executor, make_job):
    with pytest.raises(ExecutorError, match="memory_mb=4096, above this server's ceiling of 1024"):
        executor.submit(make_job("true", limits={"memory_mb": 4096}))
    with pytest.raises(ExecutorError, match="unknown resource limit 'gpus'"):
        executor.submit(make_job("true", limits={"gpus": 1}))
    with pytest.raises(ExecutorError, match="input can't be mounted at /work/x"):
        executor.submit(make_job("true", mounts=[{"source": "/etc/hostname", "target": "/work/x"}]))
    assert executor.limits_for({"limits": {"cpus": 2}}).cpus == 2.0


def test_poll_many_jobs_lists_once(executor, make_job, monkeypatch):
    running = [make_job("sleep 60") for _ in range(3)]
    done = make_job("true")
    never = make_job("true")
    for job in [*running, done]:
        executor.submit(job)
    wait_for(executor, done, {RunState.EXITED})
    for job in running:
        wait_for(executor, job, {RunState.RUNNING})

    api = executor._client().api
    calls: dict[str, int] = {"containers": 0, "inspect_container": 0}
    for name in calls:
        original = getattr(api, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(api, name, spy)
    observed = executor.poll([*running, done, never])
    assert calls == {"containers": 1, "inspect_container": 0}
    assert {job.id: observed[job.id].state for job in running} == {
        job.id: RunState.RUNNING for job in running
    }
    assert observed[done.id].state is RunState.EXITED
    assert observed[never.id] == Observation(RunState.MISSING, "no container")


def test_logs_with_tail_outlive_the_container(executor, make_job):
    job = make_job(
        "for i in $(seq 1 50); do echo out$i; echo err$i >&2; done; echo '{}' > outputs.json"
    )
    collected = run(executor, job)
    assert collected.succeeded, collected.error_detail
    out, err = executor.logs(job, tail=3)
    assert (out, err) == ("out48\nout49\nout50\n", "err48\nerr49\nerr50\n")
    executor.cleanup(job)
    executor.cleanup(job)  # idempotent
    assert executor.logs(job, tail=3) == (out, err)
    full_out, _ = executor.logs(job)
    assert full_out.splitlines() == [f"out{i}" for i in range(1, 51)]
    again = executor.collect(job)  # from what collect saved, after the container is gone
    assert again.succeeded
    assert again.stdout_tail == collected.stdout_tail
    assert executor.workdir(job).exists()
    executor.remove_workdir(job)
    assert not executor.workdir(job).exists()
    executor.remove_workdir(job)
    assert executor.logs(job) == ("", "")
    assert not executor.collect(job).succeeded


def test_remove_workdir_as_the_run_user(executor, make_job):
    job = make_job(
        "mkdir -p deep/er && echo x > deep/er/f && chmod 500 deep; echo '{}' > outputs.json"
    )
    assert run(executor, job).succeeded
    executor._remove_as_run_user(job)  # the fallback when Ferry isn't root
    assert not (executor.workdir(job) / "deep").exists()
    executor.remove_workdir(job)
    assert not executor.workdir(job).exists()


def test_a_job_submitted_again_gets_a_new_container_only_for_a_new_attempt(executor, make_job):
    """A container of the same attempt is adopted (a worker died after creating it); one of an
    earlier attempt (the job was queued again: its engine restarted under it) is removed with
    what Ferry saved of it, and the job runs afresh."""
    job = make_job("echo ran; exit 3")
    first = executor.submit(job)
    assert executor.submit(job) == first
    wait_for(executor, job, {RunState.EXITED})
    assert executor.collect(job).exit_code == 3
    saved = executor.workdir(job) / ".ferry" / "state.json"
    assert saved.exists()

    job.attempts = 1
    second = executor.submit(job)
    assert second != first
    assert not saved.exists()
    with pytest.raises(docker.errors.NotFound):
        engine().containers.get(first)
    assert executor.submit(job) == second
    wait_for(executor, job, {RunState.EXITED})
    collected = executor.collect(job)
    assert collected.exit_code == 3
    assert collected.stdout_tail == "ran\n"
    assert not collected.engine_restarted  # exit 3, and the engine never restarted


def test_engine_unreachable(tmp_path):
    executor = DockerExecutor(
        "nowhere",
        {
            "work_root": str(tmp_path),
            "defaults": {"memory_mb": 64, "cpus": 1, "pids": 16, "timeout_s": 10},
            "base_url": f"unix://{tmp_path}/no-docker.sock",
        },
    )
    job = StandInJob(run_spec={"image": "x", "command": "true"})
    with pytest.raises(ExecutorUnavailable) as down:
        executor.submit(job)
    # In plain words, never the repr of the nested exceptions ("('Connection aborted.',
    # FileNotFoundError(2, 'No such file or directory'))").
    assert str(down.value) == (
        "the Docker engine can't be reached: its socket does not exist (the engine is not running)"
    )
    with pytest.raises(ExecutorUnavailable):
        executor.poll([job])
    with pytest.raises(ExecutorUnavailable):
        executor.ping()


def test_ping(executor):
    assert executor.ping().startswith("Docker ")


# -- pieces -----------------------------------------------------------------------------------


def test_run_state_mapping():
    assert run_state("created") is RunState.PENDING
    assert run_state("running") is RunState.RUNNING
    assert run_state("paused") is RunState.RUNNING
    assert run_state("exited") is RunState.EXITED
    assert run_state("dead") is RunState.EXITED
    assert run_state("") is RunState.MISSING


def test_resolve_output_path_loops(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OutputPathError) as info:
        resolve_output_path(tmp_path, "a")
    assert info.value.kind == "outside"
    with pytest.raises(OutputPathError) as info:
        resolve_output_path(tmp_path, "bad\x00name")
    assert info.value.kind == "invalid"


def test_registry(settings, alias, tmp_path):
    settings.EXECUTORS = {
        alias: {
            "BACKEND": "executors.docker.DockerExecutor",
            "OPTIONS": {
                "work_root": str(tmp_path),
                "defaults": {"memory_mb": 64, "cpus": 1, "pids": 16, "timeout_s": 10},
            },
        }
    }
    settings.EXECUTOR_ROUTING = {"docker": alias}
    first = registry.get_executor(alias)
    assert registry.get_executor(alias) is first
    assert registry.executor_for_mode("docker") is first
    with pytest.raises(registry.ExecutorNotConfigured):
        registry.get_executor("nope")
    with pytest.raises(registry.ExecutorNotConfigured):
        registry.executor_for_mode("wdl")
    settings.EXECUTORS = {**settings.EXECUTORS, "bad": {"BACKEND": "json.JSONDecoder"}}
    assert registry.get_executor(alias) is not first  # a settings change drops instances
    with pytest.raises(ImproperlyConfigured):
        registry.get_executor("bad")
    assert [e.id for e in check_executors(None)] == ["ferry.E003"]


def test_system_check(settings, tmp_path):
    good = {
        "BACKEND": "executors.docker.DockerExecutor",
        "OPTIONS": {
            "work_root": str(tmp_path),
            "defaults": {"memory_mb": 64, "cpus": 1, "pids": 16, "timeout_s": 10},
        },
    }
    settings.EXECUTORS = {"good": good}
    settings.EXECUTOR_ROUTING = {"docker": "good"}
    assert check_executors(None) == []
    settings.EXECUTORS = {
        "good": good,
        "no-backend": {"OPTIONS": {}},
        "missing": {"BACKEND": "executors.nowhere.Executor"},
        "wrong-class": {"BACKEND": "json.JSONDecoder"},
        "bad-options": {
            "BACKEND": "executors.docker.DockerExecutor",
            "OPTIONS": {"work_root": "relative", "defaults": {"memory_mb": 64}},
        },
    }
    settings.EXECUTOR_ROUTING = {"docker": "good", "wdl": "cromwell"}
    errors = check_executors(None)
    ids = sorted({str(e.id) for e in errors})
    assert ids == ["ferry.E001", "ferry.E002", "ferry.E003", "ferry.E004", "ferry.E005"]
    messages = " | ".join(e.msg for e in errors)
    assert "EXECUTORS['no-backend'] has no BACKEND" in messages
    assert "'cromwell', which is not in settings.EXECUTORS" in messages
    assert "work_root'] must be an absolute path" in messages


class CountingEngineProxy:
    """A unix socket in front of the machine's Docker engine that passes everything through and
    notes each request's method and path, to see which engine calls a poll makes."""

    REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/\S*) HTTP/1\.[01]\r\n")

    def __init__(self, folder: Path, engine_socket: str = "/var/run/docker.sock") -> None:
        self.path = str(folder / "engine.sock")
        self.engine_socket = engine_socket
        self.requests: list[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def container_calls(self) -> list[str]:
        """The requests about containers so far ("GET /containers/json"), API version left out."""
        calls = [re.sub(r" /v[0-9.]+/", " /", request) for request in self.requests]
        return [call for call in calls if " /containers/" in call]

    @property
    def base_url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine_socket)
            for source, target, note in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(
                    target=self._pipe, args=(source, target, note), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _pipe(self, source: socket.socket, target: socket.socket, note: bool) -> None:
        try:
            while data := source.recv(65536):
                if note:
                    self.requests += [
                        f"{m.group(1).decode()} {m.group(2).decode().split('?')[0]}"
                        for m in self.REQUEST_LINE.finditer(data)
                    ]
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)


def test_a_poll_of_a_few_runs_inspects_them_and_says_what_a_listing_says(
    executor, make_job, tmp_path
):
    """A few runs (exits told of, watched jobs) are inspected one by one instead of listing
    every container the engine holds; both ways observe the same."""
    proxy = CountingEngineProxy(tmp_path)
    through_proxy = DockerExecutor(executor.alias, {**executor.options, "base_url": proxy.base_url})
    job = make_job("sleep 30")
    executor.submit(job)
    absent = [make_job("true") for _ in range(INSPECT_AT_MOST)]
    # A container named as a job's but of another executor is not this executor's run.
    foreign = make_job("true")
    client = engine()
    client.containers.create(
        "ferry/busybox:latest",
        ["true"],
        name=container_name(foreign),
        labels={"ferry.executor": "someone-else", "ferry.job": str(foreign.id)},
    )
    try:
        few = through_proxy.poll([job, foreign])
        asked_for_few = proxy.container_calls()
        many = through_proxy.poll([job, foreign, *absent])
        asked_for_many = proxy.container_calls()[len(asked_for_few) :]
        assert len([job, foreign, *absent]) > INSPECT_AT_MOST >= len([job, foreign])
        assert sorted(asked_for_few) == sorted(
            f"GET /containers/{container_name(j)}/json" for j in (job, foreign)
        )
        assert asked_for_many == ["GET /containers/json"]
        assert few[job.id].state == many[job.id].state == RunState.RUNNING
        few_started, many_started = few[job.id].started_at, many[job.id].started_at
        assert few_started is not None
        assert many_started is not None
        assert abs((few_started - many_started).total_seconds()) < 1
        assert few[foreign.id].state == many[foreign.id].state == RunState.MISSING
        assert {many[other.id].state for other in absent} == {RunState.MISSING}
        executor.cancel(job)
        assert through_proxy.poll([job])[job.id].state == RunState.MISSING
    finally:
        client.containers.get(container_name(foreign)).remove(force=True)
        client.close()
        through_proxy._client().close()
        proxy.close()


def _told_of(executor: DockerExecutor, job: StandInJob, within: float) -> float:
    """Seconds until ``wait_for_exits`` tells of ``job`` (fails after ``within``)."""
    started = time.monotonic()
    told: set[UUID] = set()
    while job.id not in told and time.monotonic() - started < within:
        told |= executor.wait_for_exits(within)
    assert job.id in told, "the run was never told of"
    return time.monotonic() - started


def test_a_run_past_its_deadline_is_told_of_at_its_deadline(executor, make_job):
    """Exits come as events, so the poll loop polls a running job only every minute or so: a
    run's deadline comes from its start event, and a run still going then is told of like an
    exit (its poll stops it then, not up to a minute late)."""
    job = make_job("sleep 60", limits={"timeout_s": 3})
    executor.wait_for_exits(0)  # following the engine from now on
    executor.submit(job)
    waited = _told_of(executor, job, within=30)
    assert 2.0 <= waited < 8, waited
    observation = executor.poll([job])[job.id]
    assert observation.detail == "timed out after 3 s"


def test_a_run_started_before_the_engine_was_followed_is_told_of_at_its_deadline(
    executor, make_job
):
    """The poll loop moves from one worker process to another: the runs going on when a
    process starts following the engine have their deadlines too."""
    job = make_job("sleep 60", limits={"timeout_s": 4})
    executor.submit(job)
    time.sleep(1.5)  # its start event is older than what a new stream is asked for
    executor.stop_waiting()
    waited = _told_of(executor, job, within=30)
    assert waited < 8, waited
    assert executor.poll([job])[job.id].detail == "timed out after 4 s"


def test_a_wait_for_exits_ends_when_the_waiter_is_woken(executor):
    """The poll loop is woken for other work (a job to submit) while it waits for exits."""
    executor.wait_for_exits(0)
    threading.Timer(0.3, executor.wake_waiter).start()
    started = time.monotonic()
    assert executor.wait_for_exits(30) == set()
    assert time.monotonic() - started < 10
