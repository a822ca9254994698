"""Only Cromwell's own word fails a job: summary lag, aborts of starting workflows, a Cromwell
without ``describe``, the environment form of a server; and the test server behaving as
Cromwell's REST reference says (abort during the post-submit lag, query keys, media types,
``workflowUrl``)."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from rest_framework.test import APIClient

from api.models import Workspace
from operations import runner
from operations.models import Job, Operation
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.executors.test_cromwell_server import (
    QUICK_WDL,
    api,
    submit,
    submitted_id,
    wait_for_status,
)
from tests.operations_fixtures import make_wdl_operation

if TYPE_CHECKING:
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.slow


@pytest.fixture
def sim(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    """The simulated server, running, without lag, faults or workflows, and the same after."""
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    yield cromwell_sim
    cromwell_sim.start()
    cromwell_sim.reset(workflows=True)


@pytest.fixture
def served_wdl() -> Iterator[str]:
    """QUICK_WDL served over HTTP on loopback; yields its URL."""
    body = QUICK_WDL.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/quick.wdl":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/quick.wdl"
    finally:
        httpd.shutdown()
        httpd.server_close()


def query(server: CromwellServer, params: Any) -> requests.Response:
    return requests.get(api(server, "/query"), params=params, timeout=10)


# ------------------------------------------------------------------ the test server, as Cromwell


def test_abort_reaches_a_workflow_still_hidden_by_the_post_submit_lag(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=600.0)  # stays Submitted
    sim.faults(submit_lag_s=600.0)
    hidden = submitted_id(sim, QUICK_WDL)
    assert requests.get(api(sim, f"/{hidden}/status"), timeout=10).status_code == 404

    aborted = requests.post(api(sim, f"/{hidden}/abort"), timeout=10)

    assert aborted.status_code == 200, aborted.text
    assert aborted.json() == {"id": hidden, "status": "Aborted"}
    again = requests.post(api(sim, f"/{hidden}/abort"), timeout=10)
    assert again.status_code == 404  # nothing in progress any more
    unknown = requests.post(api(sim, "/0f1e2d3c-4b5a-4697-8877-665544332299/abort"), timeout=10)
    assert unknown.status_code == 404


def test_abort_of_a_submitted_workflow_answers_aborted(sim: CromwellServer) -> None:
    sim.settings(sim_start_s=600.0)
    workflow_id = submitted_id(sim, QUICK_WDL)
    aborted = requests.post(api(sim, f"/{workflow_id}/abort"), timeout=10)
    assert aborted.json() == {"id": workflow_id, "status": "Aborted"}
    assert wait_for_status(sim, workflow_id, {"Aborted"}, timeout_s=10) == "Aborted"


def test_query_keys_ignore_case_and_newest_first_and_archive_status_are_taken(
    sim: CromwellServer,
) -> None:
    ids = [submitted_id(sim, QUICK_WDL) for _ in range(3)]  # oldest first
    by_id = [("ID", i) for i in ids]

    newest = query(sim, [*by_id, ("PageSize", "3")])
    assert newest.status_code == 200, newest.text
    assert [r["id"] for r in newest.json()["results"]] == ids[::-1]
    oldest = query(sim, [*by_id, ("newestFirst", "false"), ("pagesize", "2")]).json()
    assert [r["id"] for r in oldest["results"]] == ids[:2]
    assert oldest["totalResultsCount"] == 3
    posted = requests.post(
        api(sim, "/query"), json=[{"Id": ids[0]}, {"NEWESTFIRST": "true"}], timeout=10
    ).json()
    assert [r["id"] for r in posted["results"]] == [ids[0]]

    unarchived = query(sim, [*by_id, ("metadataArchiveStatus", "Unarchived")]).json()
    assert unarchived["totalResultsCount"] == 3
    archived = query(sim, [*by_id, ("metadataArchiveStatus", "Archived")]).json()
    assert archived["totalResultsCount"] == 0
    assert query(sim, [("metadataArchiveStatus", "Sideways")]).status_code == 400
    assert query(sim, [("newestFirst", "perhaps")]).status_code == 400
    assert query(sim, [("colour", "red")]).status_code == 400


def test_a_submit_that_is_not_multipart_answers_415(sim: CromwellServer) -> None:
    as_json = requests.post(api(sim, ""), json={"workflowSource": QUICK_WDL}, timeout=10)
    assert as_json.status_code == 415
    as_form = requests.post(api(sim, ""), data={"workflowSource": QUICK_WDL}, timeout=10)
    assert as_form.status_code == 415
    as_json_batch = requests.post(api(sim, "/batch"), json={}, timeout=10)
    assert as_json_batch.status_code == 415
    assert sim.counters().get("_503", 0) == 0


def test_workflow_url_is_read_for_submit_and_describe(sim: CromwellServer, served_wdl: str) -> None:
    response = requests.post(api(sim, ""), files={"workflowUrl": (None, served_wdl)}, timeout=30)
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    assert wait_for_status(sim, workflow_id, {"Succeeded"}, timeout_s=30) == "Succeeded"
    outputs = requests.get(api(sim, f"/{workflow_id}/outputs"), timeout=10).json()["outputs"]
    assert set(outputs) == {"quick.said"}
    described = requests.post(
        f"{sim.url}/api/womtool/v1/describe", files={"workflowUrl": (None, served_wdl)}, timeout=30
    ).json()
    assert described["valid"] is True
    assert described["name"] == "quick"

    gone = served_wdl.replace("quick.wdl", "gone.wdl")
    unreadable = requests.post(api(sim, ""), files={"workflowUrl": (None, gone)}, timeout=30)
    assert unreadable.status_code == 201  # Cromwell reads the URL later, and fails the workflow
    failed_id = unreadable.json()["id"]
    assert wait_for_status(sim, failed_id, {"Failed"}, timeout_s=10) == "Failed"
    failures = requests.get(
        api(sim, f"/{failed_id}/metadata"), params={"includeKey": "failures"}, timeout=10
    ).json()["failures"]
    assert "Failed to resolve" in failures[0]["causedBy"][0]["message"]
    not_a_url = submit(sim, "", workflowUrl="ftp://example.org/x.wdl")
    assert not_a_url.status_code == 400


def test_fault_switches_for_query_lag_abort_lag_and_a_missing_describe(
    sim: CromwellServer,
) -> None:
    sim.settings(sim_start_s=600.0)
    sim.faults(query_lag_s=600.0, abort_lag_s=600.0, no_describe=True)
    workflow_id = submitted_id(sim, QUICK_WDL)

    status = requests.get(api(sim, f"/{workflow_id}/status"), timeout=10)
    assert status.status_code == 200
    assert status.json()["status"] == "Submitted"
    assert query(sim, {"id": workflow_id}).json()["totalResultsCount"] == 0
    refused = requests.post(api(sim, f"/{workflow_id}/abort"), timeout=10)
    assert refused.status_code == 404
    described = requests.post(
        f"{sim.url}/api/womtool/v1/describe",
        files={"workflowSource": ("main.wdl", QUICK_WDL)},
        timeout=10,
    )
    assert described.status_code == 404
    assert described.text == "The requested resource could not be found."

    sim.faults(query_lag_s=0.0, abort_lag_s=0.0, no_describe=False)
    assert query(sim, {"id": workflow_id}).json()["totalResultsCount"] == 1
    assert requests.post(api(sim, f"/{workflow_id}/abort"), timeout=10).status_code == 200
    sim.reset()
    assert sim.faults() == {
        "status_503_next": 0,
        "drop_next": 0,
        "down": False,
        "delay_s": 0.0,
        "no_describe": False,
        "describe_refuses": "",
        "abort_lag_s": 0.0,
        "query_lag_s": 0.0,
        "submit_lag_s": 1.0,
    }


# ------------------------------------------------------------------------ Ferry against Cromwell

TALLY_WDL = """\
version 1.0
workflow tally {
  input { Int n = 3 }
  call count_up { input: n = n }
  output { Int total = count_up.total }
}
task count_up {
  input { Int n }
  command <<< echo $(( ~{n} * 2 )) >>>
  output { Int total = read_int(stdout()) }
  runtime { docker: "ferry/busybox:latest" }
}
"""


@pytest.fixture
def tally(tmp_path: Path, settings: Any) -> Operation:
    """A WDL operation with a value output only (the simulated server writes no files)."""
    settings.FERRY_VAR_DIR = tmp_path / "var"
    folder = tmp_path / "tally"
    folder.mkdir()
    (folder / "main.wdl").write_text(TALLY_WDL)
    return make_wdl_operation(folder)


def register(staff: APIClient, server: CromwellServer, **options: Any) -> tuple[str, dict]:
    """The server registered under a fresh name (Ferry remembers per name what it accepted)."""
    name = f"h{uuid.uuid4().hex[:8]}"
    response = staff.post(
        "/api/cromwell-servers/",
        {"name": name, "url": server.url, "options": {"retries": 1, "backoff_s": 0.05, **options}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return f"cromwell:{name}", dict(response.json())


def start_jobs(
    client: APIClient,
    operation: Operation,
    workspace: Workspace,
    executor: str,
    count: int,
    capture: Any,
) -> list[str]:
    body = {
        "operation": str(operation.pk),
        "workspace": str(workspace.pk),
        "inputs": {},
        "executor": executor,
    }
    ids = [run_job(client, body, capture)["id"] for _ in range(count)]
    assert {Job.objects.get(pk=i).status for i in ids} == {JobStatus.SUBMITTED}
    return ids


def statuses(ids: list[str]) -> list[str]:
    return [Job.objects.get(pk=i).status for i in ids]


@pytest.mark.django_db
def test_a_summary_lag_longer_than_the_grace_fails_no_job(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    sim: CromwellServer,
    tally: Operation,
    django_capture_on_commit_callbacks: Any,
) -> None:
    executor, _ = register(client_for("staff"), sim, post_submit_grace_s=5)
    sim.settings(sim_start_s=0.5, sim_run_s=1.0)
    # Query results miss new workflows for 12 s; status too for the first 8 s.
    sim.faults(query_lag_s=12.0, submit_lag_s=8.0)
    ids = start_jobs(
        client_for("owner"), tally, workspace, executor, 3, django_capture_on_commit_callbacks
    )

    deadline = time.monotonic() + 60
    cycles = 0
    while any(s not in ("succeeded", "failed") for s in statuses(ids)):
        assert time.monotonic() < deadline, statuses(ids)
        runner.poll_cycle()
        cycles += 1
        time.sleep(0.3)

    jobs = [Job.objects.get(pk=i) for i in ids]
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error_message for j in jobs]
    assert all(j.outputs == {"total": 1} for j in jobs)  # the simulation's value
    counters = sim.counters()
    cycles += 3  # each job's creation ran a poll cycle too
    assert counters["queryPost"] <= cycles  # one query per cycle (one page)
    # Asked by id only while missing from the query (then once more by each collect).
    assert counters.get("status", 0) <= 3 * cycles + 3


@pytest.mark.django_db
def test_only_cromwells_sustained_not_found_fails_a_job_and_says_so(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    sim: CromwellServer,
    tally: Operation,
    django_capture_on_commit_callbacks: Any,
) -> None:
    executor, _ = register(client_for("staff"), sim, post_submit_grace_s=0, fail_unknown_after_s=3)
    sim.settings(sim_start_s=600.0)
    (job_id,) = start_jobs(
        client_for("owner"), tally, workspace, executor, 1, django_capture_on_commit_callbacks
    )
    sim.reset(workflows=True)  # Cromwell lost it: status answers 404 from now on

    for _ in range(3):  # 404s, but not for long enough yet
        runner.poll_cycle()
    assert Job.objects.get(pk=job_id).status == JobStatus.SUBMITTED
    deadline = time.monotonic() + 30
    while Job.objects.get(pk=job_id).status == JobStatus.SUBMITTED:
        assert time.monotonic() < deadline
        runner.poll_cycle()
        time.sleep(0.3)

    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert f"Cromwell at {sim.url} says it does not know workflow {job_id}" in job.error_message
    assert "404 (Unrecognized workflow ID" in job.error_message
    assert sim.counters()["status"] >= 3


@pytest.mark.django_db
def test_aborts_answered_404_are_retried_by_later_cycles_without_stalling_one(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    sim: CromwellServer,
    tally: Operation,
    django_capture_on_commit_callbacks: Any,
) -> None:
    executor, _ = register(client_for("staff"), sim, fail_unknown_after_s=4)
    sim.settings(sim_start_s=600.0)
    owner = client_for("owner")
    ids = start_jobs(owner, tally, workspace, executor, 4, django_capture_on_commit_callbacks)
    sim.faults(abort_lag_s=600.0)  # every abort answers 404: the workflows are "still starting"
    for job_id in ids:
        with django_capture_on_commit_callbacks(execute=True):  # the cancel task runs inline
            assert owner.post(f"/api/jobs/{job_id}/cancel/").status_code == 202
    assert statuses(ids) == ["cancelling"] * 4
    sim.reset()  # count one cycle's requests only
    sim.faults(abort_lag_s=600.0)
    sim.settings(sim_start_s=600.0)

    started = time.monotonic()
    runner.poll_cycle()
    took = time.monotonic() - started

    counters = sim.counters()
    assert counters["abort"] == 4  # one abort per cancelling job, no retry inside the cycle
    assert counters.get("status", 0) <= 4
    assert counters["_total"] <= 1 + 3 * 4  # the query, then abort, status and logs per job
    assert statuses(ids) == ["cancelling"] * 4
    print(f"one poll cycle over 4 cancelling jobs whose aborts 404: {took:.2f} s, {counters}")

    time.sleep(4.1)  # the aborts have been refused for fail_unknown_after_s: give up, say so
    runner.poll_cycle()
    jobs = [Job.objects.get(pk=i) for i in ids]
    assert [j.status for j in jobs] == ["failed"] * 4
    message = jobs[0].error_message
    assert message.startswith(
        f"The job could not be cancelled: Cromwell at {sim.url} refused to abort workflow "
    ), message
    assert "while it reports it Submitted; it may still be running there." in message


@pytest.mark.django_db
def test_a_cromwell_without_describe_runs_jobs_checked_by_miniwdl_and_says_so(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    sim: CromwellServer,
    tally: Operation,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sim.faults(no_describe=True)
    staff = client_for("staff")
    executor, record = register(staff, sim)
    assert record["healthy"] is True
    assert "describe unavailable" in record["health_message"]
    assert "checked with miniwdl" in record["health_message"]
    listed = staff.get("/api/cromwell-servers/").json()
    shown = [s for s in listed.get("results", listed) if s["id"] == record["id"]]
    assert "describe unavailable" in shown[0]["health_message"]

    (job_id,) = start_jobs(
        client_for("owner"), tally, workspace, executor, 1, django_capture_on_commit_callbacks
    )
    job = wait_terminal(job_id, timeout=60)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert sim.counters()["describe"] >= 2  # the health probe and the job's check: both 404

    sim.faults(no_describe=False)
    checked = staff.post(f"/api/cromwell-servers/{record['id']}/check/")
    assert checked.status_code == 200, checked.content
    assert checked.json()["health_message"] == "healthy"


# ------------------------------------------------------------------ a Cromwell from the environment

NOTE_WDL = """\
version 1.0
workflow note {
  call write_note
  output { File note = write_note.out }
}
task write_note {
  command <<< echo "written on a shared file system" > note.txt >>>
  output { File out = "note.txt" }
  runtime { docker: "ferry/busybox:latest" }
}
"""


@pytest.fixture(scope="module")
def cromwell_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CromwellServer]:
    """Real runs whose outputs stay local paths (Cromwell's local backend, a shared disk)."""
    from tests.harness.buckets import free_ports
    from tests.harness.cromwell import CromwellServer, _ensure_docker_for_miniwdl

    _ensure_docker_for_miniwdl()
    work_dir = tmp_path_factory.mktemp("cromwell-shared")
    (port,) = free_ports(1)
    settings = {"port": port, "work_dir": str(work_dir), "outputs": "local", "submit_lag_s": 0.5}
    server = CromwellServer("cromwell-shared", work_dir, settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_the_environment_sets_what_a_registered_servers_options_can() -> None:
    from executors.cromwell import check_options, options_from_environment

    environ = {
        "FERRY_CROMWELL_URL": "http://cromwell.example.org:8000",
        "FERRY_CROMWELL_USERNAME": "ferry",
        "FERRY_CROMWELL_PASSWORD": "pw",
        "FERRY_CROMWELL_INPUTS_LOCATION": "s3://exec/in/",
        "FERRY_CROMWELL_OUTPUTS_LOCATION": "s3://exec/",
        "FERRY_CROMWELL_LOCAL_ROOTS": "/srv/cromwell-executions, /scratch/runs",
        "FERRY_CROMWELL_POST_SUBMIT_GRACE_S": "5",
        "FERRY_CROMWELL_FAIL_UNKNOWN_AFTER_S": "none",
        "FERRY_CROMWELL_WORKFLOW_OPTIONS": '{"final_workflow_outputs_dir": "s3://exec/out"}',
        "FERRY_CROMWELL_QUERY_PAGE_SIZE": "500",
        "FERRY_CROMWELL_RETRIES": "2",
        "FERRY_CROMWELL_READ_TIMEOUT_S": "60",
    }
    options = options_from_environment(environ)
    assert options == {
        "url": "http://cromwell.example.org:8000",
        "auth": {"type": "basic", "username": "ferry", "password": "pw"},
        "inputs_location": "s3://exec/in/",
        "outputs_location": "s3://exec/",
        "local_roots": ["/srv/cromwell-executions", "/scratch/runs"],
        "post_submit_grace_s": 5.0,
        "fail_unknown_after_s": None,
        "query_page_size": 500,
        "retries": 2,
        "timeouts": {"read": 60.0},
        "workflow_options": {"final_workflow_outputs_dir": "s3://exec/out"},
    }
    assert check_options(options) == []
    assert options_from_environment({"FERRY_CROMWELL_TOKEN": "t"}) is None  # no URL: no server

    with pytest.raises(ValueError, match="FERRY_CROMWELL_POST_SUBMIT_GRACE_S must be a number"):
        options_from_environment({**environ, "FERRY_CROMWELL_POST_SUBMIT_GRACE_S": "soon"})
    with pytest.raises(ValueError, match="FERRY_CROMWELL_WORKFLOW_OPTIONS is not a JSON object"):
        options_from_environment({**environ, "FERRY_CROMWELL_WORKFLOW_OPTIONS": "{"})
    odd = options_from_environment(
        {
            **environ,
            "FERRY_CROMWELL_LOCAL_ROOTS": "relative/path",
            "FERRY_CROMWELL_OUTPUTS_LOCATION": "exec-bucket",
        }
    )
    assert odd is not None
    problems = check_options(odd)
    assert "OPTIONS['local_roots'] must be a list of absolute paths" in problems
    assert any(
        p.startswith("OPTIONS['outputs_location'] must be a bucket prefix") for p in problems
    )


def test_the_system_check_reports_a_bad_environment_server(settings: Any) -> None:
    from executors.checks import check_executors
    from executors.cromwell import options_from_environment

    options = options_from_environment(
        {"FERRY_CROMWELL_URL": "http://c:8000", "FERRY_CROMWELL_LOCAL_ROOTS": "runs"}
    )
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "cromwell": {"BACKEND": "executors.cromwell.CromwellExecutor", "OPTIONS": options},
    }
    errors = check_executors()
    assert [e.id for e in errors] == ["ferry.E005"]
    assert "local_roots" in errors[0].msg


@pytest.mark.django_db
def test_file_outputs_on_a_shared_file_system_work_for_a_cromwell_from_the_environment(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    settings: Any,
    tmp_path: Path,
    cromwell_local: CromwellServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from api.models import File
    from executors.cromwell import options_from_environment

    settings.FERRY_VAR_DIR = tmp_path / "var"
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "cromwell": {
            "BACKEND": "executors.cromwell.CromwellExecutor",
            "OPTIONS": options_from_environment(
                {
                    "FERRY_CROMWELL_URL": cromwell_local.url,
                    "FERRY_CROMWELL_LOCAL_ROOTS": str(cromwell_local.work_dir),
                    "FERRY_CROMWELL_POST_SUBMIT_GRACE_S": "5",
                    "FERRY_CROMWELL_RETRIES": "1",
                }
            ),
        },
    }
    folder = tmp_path / "note"
    folder.mkdir()
    (folder / "main.wdl").write_text(NOTE_WDL)
    operation = make_wdl_operation(folder)

    (job_id,) = start_jobs(
        client_for("owner"), operation, workspace, "cromwell", 1, django_capture_on_commit_callbacks
    )
    job = wait_terminal(job_id, timeout=180)

    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    note = File.objects.get(pk=job.outputs["note"])
    assert note.produced_by_id == job.pk
    assert note.size == len(b"written on a shared file system\n")


# ------------------------------------------------------------------------- the executor on its own


def test_cancel_of_a_starting_workflow_makes_one_abort_and_never_sleeps(
    sim: CromwellServer,
) -> None:
    from executors.base import ExecutorUnavailable
    from executors.cromwell import CromwellExecutor
    from tests.executors.test_executor_cromwell import SIM_WDL, wdl_job

    # A backoff that would show: the old cancel slept 0.5 + 1 + 2 s between four aborts.
    executor = CromwellExecutor("h-cancel", {"url": sim.url, "retries": 1, "backoff_s": 0.5})
    sim.settings(sim_start_s=600.0)
    job = wdl_job(SIM_WDL, "sim")
    executor.submit(job)
    sim.faults(abort_lag_s=600.0)
    before = sim.counters()

    with pytest.raises(ExecutorUnavailable, match="the abort will be tried again"):
        executor.cancel(job)

    after = sim.counters()
    assert after["abort"] - before.get("abort", 0) == 1
    assert after["_total"] - before["_total"] == 2  # the abort, and one status to tell why


def test_describe_and_health_of_a_cromwell_without_describe(sim: CromwellServer) -> None:
    from executors.cromwell import CromwellExecutor

    executor = CromwellExecutor("h-describe", {"url": sim.url, "retries": 1, "backoff_s": 0.05})
    assert executor.describe(QUICK_WDL) is not None
    assert executor.health()["describe"] is True
    sim.faults(no_describe=True)

    assert executor.describe(QUICK_WDL) is None
    health = executor.health()
    assert health["ok"] is True
    assert health["describe"] is False
    assert health["message"] == (
        "healthy; describe unavailable (/api/womtool/v1/describe answered 404): workflows are "
        "checked with miniwdl only"
    )


def test_collect_fails_a_job_only_on_cromwells_sustained_not_found(sim: CromwellServer) -> None:
    from executors.base import ExecutorUnavailable
    from executors.cromwell import CromwellExecutor
    from tests.executors.test_executor_cromwell import SIM_WDL, wdl_job

    executor = CromwellExecutor(
        "h-collect", {"url": sim.url, "retries": 1, "backoff_s": 0.05, "fail_unknown_after_s": 0}
    )
    forgotten = wdl_job(SIM_WDL, "sim")  # Cromwell has no such workflow
    for _ in range(2):
        with pytest.raises(ExecutorUnavailable, match="answered 404 for the status"):
            executor.collect(forgotten)
    collected = executor.collect(forgotten)
    assert not collected.succeeded
    assert collected.error_message.startswith(
        f"Cromwell at {sim.url} says it does not know workflow {forgotten.id}"
    )
