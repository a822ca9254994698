"""The Cromwell executor: pure helpers first, then against the Cromwell test server
(``tests/cromwell_server``): real miniwdl runs with outputs in a moto bucket, and the simulated
mode where nothing needs to run."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from executors.base import Collected, ExecutorError, ExecutorUnavailable, Observation, RunState
from executors.checks import check_executors
from executors.cromwell import (
    CromwellExecutor,
    _call_attempts,
    _failing_calls,
    _is_uri,
    _root_cause,
    check_options,
    run_state,
)
from wdl.outputs import file_leaves

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer


WAIT_S = 180.0
FINAL = {"Succeeded", "Failed", "Aborted"}

HELLO_WDL = """\
version 1.0
workflow hello {
  input {
    File greeting
    String name
  }
  scatter (i in [1, 2]) {
    call shout { input: text = name, index = i }
  }
  call copy { input: src = greeting }
  output {
    Array[File] shouts = shout.out
    File copied = copy.out
    Int count = length(shout.out)
  }
}
task shout {
  input {
    String text
    Int index
  }
  command <<< echo "~{text} ~{index}" | tr a-z A-Z > shout.txt >>>
  output { File out = "shout.txt" }
  runtime { docker: "ferry/busybox:latest" }
}
task copy {
  input { File src }
  command <<< cat ~{src} > copied.txt; echo "copied it" >&2 >>>
  output { File out = "copied.txt" }
  runtime { docker: "ferry/busybox:latest" }
}
"""
HELLO_OUTPUTS = {
    "shouts": {"type": "file", "many": True},
    "copied": {"type": "file", "many": False},
    "count": {"type": "integer"},
}

FAILING_WDL = """\
version 1.0
workflow breaks {
  call boom
  output { File never = boom.out }
}
task boom {
  command <<< echo "something went wrong in boom" >&2; exit 3 >>>
  output { File out = "nothing.txt" }
  runtime { docker: "ferry/busybox:latest" }
}
"""

SLEEPING_WDL = """\
version 1.0
workflow sleeper {
  call nap
  output { String done = nap.said }
}
task nap {
  command <<< sleep 60; echo woke >>>
  output { String said = read_string(stdout()) }
  runtime { docker: "ferry/busybox:latest" }
}
"""

# Simulated runs never execute; the server only reads the document's outputs.
SIM_WDL = """\
version 1.0
workflow sim {
  input { Int x = 1 }
  call t
  output {
    File report = t.out
    Array[File] parts = [t.out, t.out]
    Int n = x
  }
}
task t {
  command <<< echo hi > out.txt >>>
  output { File out = "out.txt" }
}
"""
SIM_OUTPUTS = {
    "report": {"type": "file", "many": False},
    "parts": {"type": "file", "many": True},
    "n": {"type": "integer"},
}


@dataclass
class StandInJob:
    """What an executor needs of a job (operations.models.Job has these attributes)."""

    run_spec: dict[str, Any]
    id: UUID = field(default_factory=uuid.uuid4)


def wdl_job(source: str, name: str, **spec: Any) -> StandInJob:
    return StandInJob({"workflow_source": source, "workflow_name": name, "inputs": {}, **spec})


def executor_for(server: CromwellServer, **options: Any) -> CromwellExecutor:
    """An executor with quick retries, so the fault tests stay fast."""
    defaults = {"url": server.url, "retries": 3, "backoff_s": 0.05}
    return CromwellExecutor(f"cromwell-{uuid.uuid4().hex[:6]}", {**defaults, **options})


def wait_for(
    executor: CromwellExecutor,
    jobs: Sequence[StandInJob],
    wanted: set[RunState],
    timeout_s: float = WAIT_S,
) -> dict[UUID, Observation]:
    """Poll (all jobs at once) until each is in a ``wanted`` state."""
    deadline = time.monotonic() + timeout_s
    observed: dict[UUID, Observation] = {}
    while time.monotonic() < deadline:
        observed = executor.poll(jobs)
        if all(observed[job.id].state in wanted for job in jobs):
            return observed
        time.sleep(0.2)
    pytest.fail(f"jobs did not reach {wanted}: {observed}")


def run_to_end(executor: CromwellExecutor, job: StandInJob) -> Collected:
    assert executor.submit(job) == str(job.id)
    wait_for(executor, [job], {RunState.EXITED})
    return executor.collect(job)


def read_s3(s3: S3Server, uri: str) -> str:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    client = s3.boto3_client()
    try:
        return str(client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    finally:
        client.close()


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture
def sim(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    """The simulated server, running, without lag, faults or workflows, and the same after."""
    cromwell_sim.start()  # in case a test left it stopped
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    yield cromwell_sim
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)


@pytest.fixture
def real(cromwell_server: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_server.start()
    cromwell_server.reset()
    yield cromwell_server
    cromwell_server.reset()


@pytest.fixture(scope="module")
def cromwell_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CromwellServer]:
    """Real runs whose outputs stay local paths (Cromwell's local backend)."""
    from tests.harness.buckets import free_ports
    from tests.harness.cromwell import CromwellServer, _ensure_docker_for_miniwdl

    _ensure_docker_for_miniwdl()
    work_dir = tmp_path_factory.mktemp("cromwell-local")
    (port,) = free_ports(1)
    settings = {"port": port, "work_dir": str(work_dir), "outputs": "local", "submit_lag_s": 0.5}
    server = CromwellServer("cromwell-local", work_dir, settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Submitted", RunState.PENDING),
        ("On Hold", RunState.PENDING),
        ("Running", RunState.RUNNING),
        ("Aborting", RunState.RUNNING),
        ("Succeeded", RunState.EXITED),
        ("Failed", RunState.EXITED),
        ("Aborted", RunState.EXITED),
        ("SomethingNew", RunState.PENDING),
    ],
)
def test_run_state_maps_every_cromwell_status(status: str, state: RunState) -> None:
    assert run_state(status) is state


def test_root_cause_is_the_deepest_message() -> None:
    failures = [
        {
            "message": "Workflow failed",
            "causedBy": [
                {"message": "shallow", "causedBy": []},
                {"message": "middle", "causedBy": [{"message": "the real reason", "causedBy": []}]},
            ],
        }
    ]
    assert _root_cause(failures) == "the real reason"
    assert _root_cause([]) == ""
    assert _root_cause(["not a dict", {"causedBy": None}]) == ""


def test_output_values_are_walked_along_their_shape_and_nulls_skipped() -> None:
    # Once flattened without their type (a Pair's String was taken for a file); now walked
    # along the output's shape, each file with its position.
    shape = {
        "type": "pair",
        "left": {"type": "list", "items": {"type": "file"}},
        "right": {"type": "pair", "left": {"type": "string"}, "right": {"type": "file"}},
    }
    value = {"left": ["s3://b/1", None], "right": {"left": "label", "right": "s3://b/3"}}
    assert file_leaves(shape, value) == [
        (("left", 0), "s3://b/1"),
        (("right", "right"), "s3://b/3"),
    ]
    assert file_leaves(shape, None) == []


def test_uris_and_paths_are_told_apart() -> None:
    assert _is_uri("s3://bucket/key")
    assert _is_uri("gs://bucket/key")
    assert not _is_uri("/cromwell-executions/wf/out.txt")
    assert not _is_uri("relative/out.txt")
    assert not _is_uri("s3://")


def test_failing_calls_are_the_last_attempts_that_failed() -> None:
    metadata = {
        "calls": {
            "wf.a": [
                {"executionStatus": "Failed", "attempt": 1, "shardIndex": -1, "returnCode": 1},
                {"executionStatus": "Done", "attempt": 2, "shardIndex": -1, "returnCode": 0},
            ],
            "wf.b": [
                {"executionStatus": "Done", "shardIndex": 0, "attempt": 1},
                {"executionStatus": "Failed", "shardIndex": 1, "attempt": 1, "returnCode": 7},
            ],
        }
    }
    failing = _failing_calls(_call_attempts(metadata))
    assert [(c.name, c.shard, c.return_code, c.label) for c in failing] == [
        ("wf.b", 1, 7, "wf.b shard 1")
    ]


def test_options_are_checked() -> None:
    assert check_options({"url": "http://cromwell:8000"}) == []
    assert check_options("nope") == ["OPTIONS must be a dict"]
    problems = check_options(
        {
            "url": "cromwell:8000",
            "auth": {"type": "basic", "username": "u"},
            "timeouts": {"connect": 0},
            "query_page_size": 0,
            "local_roots": ["relative"],
        }
    )
    assert len(problems) == 5, problems
    assert check_options({"url": "https://c", "auth": {"type": "bearer", "token": "t"}}) == []
    assert check_options({"url": "https://c", "auth": {"type": "magic"}}) != []
    with pytest.raises(ExecutorError, match="misconfigured"):
        CromwellExecutor("cromwell-bad", {"url": "ftp://nope"})


def test_the_system_check_reports_bad_options(settings: Any) -> None:
    settings.EXECUTORS = {
        "cromwell": {
            "BACKEND": "executors.cromwell.CromwellExecutor",
            "OPTIONS": {"url": "cromwell", "query_page_size": "many"},
        }
    }
    settings.EXECUTOR_ROUTING = {"wdl": "cromwell"}
    errors = check_executors()
    assert {e.id for e in errors} == {"ferry.E005"}
    assert len(errors) == 2


# --------------------------------------------------------------------- real runs (miniwdl)


@pytest.mark.slow
def test_a_real_workflow_succeeds_with_outputs_in_the_bucket(
    real: CromwellServer, moto_server: S3Server
) -> None:
    client = moto_server.boto3_client()
    client.put_object(Bucket=real.bucket, Key="inputs/greeting.txt", Body=b"hello from s3\n")
    client.close()
    executor = executor_for(real)
    job = wdl_job(
        HELLO_WDL,
        "hello",
        inputs={"hello.greeting": f"s3://{real.bucket}/inputs/greeting.txt", "hello.name": "bob"},
        outputs=HELLO_OUTPUTS,
        labels={"project": "p1"},
    )

    collected = run_to_end(executor, job)

    assert collected.succeeded, collected.error_message
    assert collected.values == {"count": 2}
    assert collected.files == {}
    assert set(collected.remote_files) == {"shouts", "copied"}
    assert [read_s3(moto_server, uri) for uri in collected.remote_files["shouts"]] == [
        "BOB 1\n",
        "BOB 2\n",
    ]
    assert [read_s3(moto_server, uri) for uri in collected.remote_files["copied"]] == [
        "hello from s3\n"
    ]
    stdout, stderr = executor.logs(job)
    assert "== hello.copy: s3://" in stderr  # where the logs are; they aren't read from S3
    assert "== hello.shout shard 1: s3://" in stdout
    executor.cleanup(job)  # nothing to do, and no error


@pytest.mark.slow
def test_a_failing_task_names_the_call_and_its_return_code(
    real: CromwellServer, moto_server: S3Server
) -> None:
    executor = executor_for(real)
    job = wdl_job(FAILING_WDL, "breaks", outputs={"never": {"type": "file"}})

    collected = run_to_end(executor, job)

    assert not collected.succeeded
    assert collected.exit_code == 3
    message = collected.error_message
    assert message.startswith("The workflow failed in breaks.boom (return code 3): Job breaks.boom")
    stderr_uri = message.split("Its stderr is at ", 1)[1].strip()
    assert "something went wrong in boom" in read_s3(moto_server, stderr_uri)
    assert "Workflow failed" in collected.error_detail
    assert '"causedBy"' in collected.error_detail


@pytest.mark.slow
def test_cancel_aborts_a_sleeping_workflow(real: CromwellServer) -> None:
    executor = executor_for(real)
    job = wdl_job(SLEEPING_WDL, "sleeper", outputs={"done": {"type": "string"}})
    executor.submit(job)
    wait_for(executor, [job], {RunState.RUNNING})

    executor.cancel(job)

    observed = wait_for(executor, [job], {RunState.EXITED}, timeout_s=90)
    assert observed[job.id].detail == "Aborted"
    assert executor.collect(job) == Collected(succeeded=False, error_message="cancelled")
    executor.cancel(job)  # Cromwell answers 404 for a finished workflow: not an error


@pytest.mark.slow
def test_local_outputs_are_files_only_under_local_roots(cromwell_local: CromwellServer) -> None:
    trusting = executor_for(cromwell_local, local_roots=[str(cromwell_local.work_dir)])
    job = wdl_job(FAILING_WDL.replace("exit 3", "echo made > nothing.txt"), "breaks")
    job.run_spec["outputs"] = {"never": {"type": "file"}}

    collected = run_to_end(trusting, job)

    assert collected.succeeded, collected.error_message
    (path,) = collected.files["never"]
    assert path.read_text() == "made\n"
    assert path.is_relative_to(cromwell_local.work_dir.resolve())
    _, stderr = trusting.logs(job)
    assert "something went wrong in boom" in stderr  # the content, read from the local path

    wary = executor_for(cromwell_local)  # no local_roots: local paths are never opened
    refused = wary.collect(job)
    assert not refused.succeeded
    assert "which is not a file this server can read" in refused.error_message
    _, stderr = wary.logs(job)
    assert "something went wrong" not in stderr
    assert f"== breaks.boom: {cromwell_local.work_dir}" in stderr  # only where it is


# ---------------------------------------------------------------- simulated runs: the client


@pytest.mark.slow
def test_simulated_outputs_are_flattened_into_remote_files(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=0.1, sim_run_s=0.2)
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim", outputs=SIM_OUTPUTS, inputs={"sim.x": 3})

    collected = run_to_end(executor, job)

    assert collected.succeeded
    assert collected.values == {"n": 1}  # simulated values are made up
    assert len(collected.remote_files["parts"]) == 2
    assert all(uri.startswith(f"s3://{sim.bucket}/") for uri in collected.remote_files["parts"])
    assert len(collected.remote_files["report"]) == 1


@pytest.mark.slow
def test_submit_is_idempotent(sim: CromwellServer) -> None:
    sim.faults(submit_lag_s=1.0)  # the second submit comes while the first is still invisible
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")

    assert executor.submit(job) == str(job.id)
    assert executor.submit(job) == str(job.id)  # 400 "already in use": adopted

    time.sleep(1.2)
    assert executor.submit(job) == str(job.id)
    counters = sim.counters()
    assert counters["submit"] == 3
    found = executor.client.query_ids([str(job.id)])
    assert [row["id"] for row in found] == [str(job.id)]
    labels = executor.client._json("GET", f"api/workflows/v1/{job.id}/labels")["labels"]
    assert labels["ferry-job-id"] == str(job.id)


@pytest.mark.slow
def test_submit_sends_options_labels_and_dependencies(sim: CromwellServer) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("lib.wdl", "version 1.0\ntask t { command <<< true >>> }\n")
    executor = executor_for(sim, workflow_options={"final_workflow_outputs_dir": "s3://b/out"})
    job = wdl_job(
        SIM_WDL,
        "sim",
        labels={"project": "p1"},
        options={"final_workflow_outputs_dir": "s3://elsewhere", "use_relative_output_paths": True},
        workflow_dependencies_zip_b64=base64.b64encode(archive.getvalue()).decode(),
    )
    executor.submit(job)
    metadata = executor.client.metadata(str(job.id), ["submittedFiles", "labels"])
    options = json.loads(metadata["submittedFiles"]["options"])
    assert options == {  # the server's settings win over the run spec's
        "final_workflow_outputs_dir": "s3://b/out",
        "use_relative_output_paths": True,
    }
    assert metadata["labels"]["project"] == "p1"
    assert metadata["labels"]["ferry-job-id"] == str(job.id)

    bad = wdl_job(SIM_WDL, "sim", workflow_dependencies_zip_b64="not base64!")
    with pytest.raises(ExecutorError, match="not valid base64"):
        executor.submit(bad)
    with pytest.raises(ExecutorError, match="no workflow source"):
        executor.submit(StandInJob({"inputs": {}}))
    refused = wdl_job(SIM_WDL, "sim", labels={"k" * 300: "v"})
    with pytest.raises(ExecutorError, match="Cromwell refused the workflow"):
        executor.submit(refused)


@pytest.mark.slow
def test_poll_asks_once_per_page_of_ids(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=60.0)
    executor = executor_for(sim, query_page_size=2)
    jobs = [wdl_job(SIM_WDL, "sim") for _ in range(5)]
    for job in jobs:
        executor.submit(job)
    sim.reset()  # counters back to zero (the workflows stay)
    sim.settings(sim_start_s=0.0, sim_run_s=60.0)

    observed = executor.poll(jobs)

    assert {o.state for o in observed.values()} == {RunState.RUNNING}
    assert set(observed) == {job.id for job in jobs}
    counters = sim.counters()
    assert counters["queryPost"] == 3
    assert counters["_total"] == 3  # no status request per job


@pytest.mark.slow
def test_many_workflows_in_few_requests(sim: CromwellServer) -> None:
    ids = sim.simulate_bulk(2500)
    jobs = [StandInJob({}, UUID(workflow_id)) for workflow_id in ids]
    executor = executor_for(sim)  # query_page_size 1000
    sim.reset()

    observed = executor.poll(jobs)

    assert len(observed) == 2500
    assert all(o.state in (RunState.RUNNING, RunState.EXITED) for o in observed.values())
    assert sim.counters()["_total"] == 3


@pytest.mark.slow
def test_a_new_workflow_is_pending_while_cromwell_lags(sim: CromwellServer) -> None:
    sim.faults(submit_lag_s=2.0)
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")
    executor.submit(job)

    assert executor.poll([job])[job.id] == Observation(RunState.PENDING, "still submitting")

    wait_for(executor, [job], {RunState.RUNNING, RunState.EXITED}, timeout_s=30)


@pytest.mark.slow
def test_a_workflow_cromwell_never_heard_of_goes_missing_after_the_grace(
    sim: CromwellServer,
) -> None:
    never_submitted = wdl_job(SIM_WDL, "sim")
    patient = executor_for(sim, post_submit_grace_s=None)
    assert patient.poll([never_submitted])[never_submitted.id].state is RunState.PENDING
    assert patient.poll([never_submitted])[never_submitted.id].state is RunState.PENDING

    # Only Cromwell's "not found", sustained (three status 404s in a row), fails it.
    strict = executor_for(sim, post_submit_grace_s=0, fail_unknown_after_s=0)
    assert strict.poll([never_submitted])[never_submitted.id].state is RunState.PENDING
    assert strict.poll([never_submitted])[never_submitted.id].state is RunState.PENDING
    observed = strict.poll([never_submitted])[never_submitted.id]
    assert observed.state is RunState.MISSING
    assert observed.detail.startswith(
        f"Cromwell at {sim.url} says it does not know workflow {never_submitted.id}: its status "
        "answered 404 (Unrecognized workflow ID"
    )
    strict.cancel(never_submitted)  # nothing to stop: not an error


@pytest.mark.slow
def test_cancel_right_after_submit_is_retried_until_cromwell_knows_the_workflow(
    sim: CromwellServer,
) -> None:
    sim.faults(abort_lag_s=1.5)  # abort answers 404 while the workflow is starting
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")
    executor.submit(job)

    with pytest.raises(ExecutorUnavailable, match="did not abort workflow"):
        executor.cancel(job)  # abort answers 404 for now: the caller tries again
    time.sleep(1.6)
    executor.cancel(job)

    wait_for(executor, [job], {RunState.EXITED}, timeout_s=30)
    assert executor.collect(job).error_message == "cancelled"


@pytest.mark.slow
def test_a_simulated_failure_gives_the_root_cause(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=0.1, sim_fail_fraction=1.0)
    executor = executor_for(sim)
    collected = run_to_end(executor, wdl_job(SIM_WDL, "sim"))
    assert not collected.succeeded
    assert collected.error_message.startswith("The workflow failed: Job sim.simulated_task:NA:1")
    assert "return code 1" in collected.error_message


@pytest.mark.slow
def test_a_burst_of_503_is_retried(sim: CromwellServer) -> None:
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")
    sim.faults(status_503_next=3)
    executor.submit(job)
    assert sim.counters()["_503"] == 3

    sim.faults(status_503_next=2)
    assert executor.poll([job])[job.id].state in (RunState.PENDING, RunState.RUNNING)
    assert sim.counters()["_503"] == 5

    sim.faults(status_503_next=100)  # more than the retries: unavailable, not failed
    with pytest.raises(ExecutorUnavailable, match=f"Cromwell at {sim.url} unreachable: 503"):
        executor.poll([job])
    with pytest.raises(ExecutorUnavailable):
        executor.submit(wdl_job(SIM_WDL, "sim"))


@pytest.mark.slow
def test_dropped_connections_are_retried(sim: CromwellServer) -> None:
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")
    sim.faults(drop_next=2)
    assert executor.submit(job) == str(job.id)
    sim.faults(drop_next=2)
    assert job.id in executor.poll([job])
    counters = sim.counters()
    assert counters["_dropped"] == 4
    assert counters["submit"] == 3  # two dropped, then the one that counted

    sim.faults(down=True)
    with pytest.raises(ExecutorUnavailable, match="unreachable"):
        executor.poll([job])


@pytest.mark.slow
def test_a_stopped_server_is_unavailable_and_jobs_resume_when_it_returns(
    sim: CromwellServer,
) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=1.0)
    executor = executor_for(sim)
    jobs = [wdl_job(SIM_WDL, "sim") for _ in range(2)]
    for job in jobs:
        executor.submit(job)
    sim.stop()
    try:
        with pytest.raises(ExecutorUnavailable, match=f"Cromwell at {sim.url} unreachable") as down:
            executor.poll(jobs)
        # In plain words, never the repr of requests' and urllib3's nested exceptions.
        assert str(down.value) == f"Cromwell at {sim.url} unreachable: the connection was refused"
        with pytest.raises(ExecutorUnavailable):
            executor.submit(wdl_job(SIM_WDL, "sim"))
        with pytest.raises(ExecutorUnavailable):
            executor.collect(jobs[0])
        with pytest.raises(ExecutorUnavailable):
            executor.cancel(jobs[0])
        health = executor.health()
        assert health["reachable"] is False
        assert "unreachable" in health["error"]
        assert health["message"] == health["error"]
    finally:
        sim.start()
    wait_for(executor, jobs, {RunState.EXITED}, timeout_s=30)
    assert all(executor.collect(job).succeeded for job in jobs)


@pytest.mark.slow
def test_collect_too_early_is_retried_later(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=0.0, sim_run_s=60.0)
    executor = executor_for(sim)
    job = wdl_job(SIM_WDL, "sim")
    executor.submit(job)
    with pytest.raises(ExecutorUnavailable, match="still"):
        executor.collect(job)
    executor.cancel(job)


@pytest.mark.slow
def test_health_and_describe(sim: CromwellServer) -> None:
    executor = executor_for(sim, auth={"type": "bearer", "token": "t0ken"})
    health = executor.health()
    assert health["reachable"]
    assert health["ok"]
    assert health["version"] == "88-ferry-test"
    assert health["subsystems"]["Engine Database"] == {"ok": True}
    assert health["message"] == "healthy"

    assert executor.client.describe(SIM_WDL)["valid"] is True
    described = executor.client.describe("version 1.0\nworkflow broken {")
    assert described["valid"] is False
    assert described["errors"]
