"""The Cromwell test server itself (issue 6), exercised with plain ``requests`` as a client:
real miniwdl runs with outputs in a moto bucket, Cromwell's JSON shapes and status codes,
the post-submit 404 lag, fault switches, restarts, and the simulated mode at scale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import docker
import pytest
import requests

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer

pytestmark = pytest.mark.slow

WAIT_S = 180.0
FINAL = {"Succeeded", "Failed", "Aborted"}

HELLO_WDL = """\
version 1.0
workflow hello {
  input {
    File greeting_file
    String name
  }
  scatter (i in [1, 2]) {
    call shout { input: text = name, index = i }
  }
  call copy { input: src = greeting_file }
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

QUICK_WDL = """\
version 1.0
workflow quick {
  input { String word = "hi" }
  call say { input: word = word }
  output { String said = say.out }
}
task say {
  input { String word }
  command <<< echo ~{word} >>>
  output { String out = read_string(stdout()) }
  runtime { docker: "ferry/busybox:latest" }
}
"""


# -- helpers --------------------------------------------------------------------------------


def api(server: CromwellServer, path: str) -> str:
    return f"{server.url}/api/workflows/v1{path}"


def submit(server: CromwellServer, source: str, **parts: Any) -> requests.Response:
    files: dict[str, Any] = {"workflowSource": ("main.wdl", source)}
    for name, value in parts.items():
        text = value if isinstance(value, str) else json.dumps(value)
        files[name] = (None, text)
    return requests.post(api(server, ""), files=files, timeout=30)


def submitted_id(server: CromwellServer, source: str, **parts: Any) -> str:
    response = submit(server, source, **parts)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "Submitted"
    return str(body["id"])


def wait_for_status(
    server: CromwellServer, workflow_id: str, wanted: set[str], timeout_s: float = WAIT_S
) -> str:
    """Poll status; 404 means "still submitting" (Cromwell's lag), as a client must treat it."""
    deadline = time.monotonic() + timeout_s
    status = "(not visible yet)"
    while time.monotonic() < deadline:
        response = requests.get(api(server, f"/{workflow_id}/status"), timeout=10)
        if response.status_code == 200:
            status = response.json()["status"]
            if status in wanted:
                return status
            if status in FINAL:
                break
        else:
            assert response.status_code == 404, response.text
        time.sleep(0.3)
    metadata = requests.get(api(server, f"/{workflow_id}/metadata"), timeout=10).text
    pytest.fail(f"workflow {workflow_id} is {status}, not {wanted}:\n{metadata[:3000]}")


def metadata(server: CromwellServer, workflow_id: str, **params: Any) -> dict[str, Any]:
    response = requests.get(api(server, f"/{workflow_id}/metadata"), params=params, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def read_s3(s3: S3Server, uri: str) -> str:
    assert uri.startswith("s3://"), uri
    bucket, key = uri[len("s3://") :].split("/", 1)
    client = s3.boto3_client()
    try:
        return str(client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    finally:
        client.close()


def containers_of(workflow_id: str) -> list[str]:
    """Names of Docker containers whose mounts are inside this workflow's folder."""
    client = docker.from_env()
    try:
        names: list[str] = []
        for container in client.api.containers(all=True):  # one call, no inspect races
            mounts = container.get("Mounts") or []
            if any(workflow_id in str(mount.get("Source", "")) for mount in mounts):
                names.extend(container.get("Names") or [container["Id"]])
        return names
    finally:
        client.close()


@pytest.fixture
def sim(cromwell_sim: CromwellServer) -> Iterator[CromwellServer]:
    """The simulated server with no lag, no faults and no workflows, and the same after."""
    cromwell_sim.reset(workflows=True)
    cromwell_sim.faults(submit_lag_s=0.0)
    yield cromwell_sim
    cromwell_sim.reset(workflows=True)


@pytest.fixture
def real(cromwell_server: CromwellServer) -> Iterator[CromwellServer]:
    cromwell_server.start()  # in case an earlier test left it stopped
    cromwell_server.reset()
    yield cromwell_server
    cromwell_server.reset()


# -- real runs ------------------------------------------------------------------------------


def test_real_workflow_uploads_its_outputs_to_the_bucket(
    real: CromwellServer, moto_server: S3Server
) -> None:
    client = moto_server.boto3_client()
    client.put_object(Bucket=real.bucket, Key="test-inputs/greeting.txt", Body=b"hello from s3\n")
    client.close()
    workflow_id = submitted_id(
        real,
        HELLO_WDL,
        workflowInputs={
            "hello.greeting_file": f"s3://{real.bucket}/test-inputs/greeting.txt",
            "hello.name": "bob",
        },
        labels={"ferry-job": "job-1"},
    )
    assert wait_for_status(real, workflow_id, {"Succeeded"}) == "Succeeded"

    response = requests.get(api(real, f"/{workflow_id}/outputs"), timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == workflow_id
    outputs = body["outputs"]
    assert outputs["hello.count"] == 2
    assert [read_s3(moto_server, uri) for uri in outputs["hello.shouts"]] == ["BOB 1\n", "BOB 2\n"]
    assert read_s3(moto_server, outputs["hello.copied"]) == "hello from s3\n"
    assert all(
        uri.startswith(f"s3://{real.bucket}/hello/{workflow_id}/")
        for uri in outputs["hello.shouts"]
    )

    full = metadata(real, workflow_id)
    assert full["workflowName"] == "hello"
    assert full["labels"]["ferry-job"] == "job-1"
    assert full["submittedFiles"]["workflow"] == HELLO_WDL
    assert full["start"] <= full["end"]
    copy_call = full["calls"]["hello.copy"][0]
    assert copy_call["executionStatus"] == "Done"
    assert copy_call["returnCode"] == 0
    assert read_s3(moto_server, copy_call["stderr"]) == "copied it\n"
    assert copy_call["callRoot"].startswith(f"s3://{real.bucket}/hello/{workflow_id}/call-copy")
    assert [c["shardIndex"] for c in full["calls"]["hello.shout"]] == [0, 1]

    only = metadata(real, workflow_id, includeKey=["status", "failures"])
    assert set(only) == {"id", "status"}
    # includeKey also applies inside each call, as Cromwell does
    with_outputs = metadata(real, workflow_id, includeKey="outputs")
    assert set(with_outputs) == {"id", "outputs", "calls"}
    assert set(with_outputs["calls"]["hello.copy"][0]) == {"outputs", "shardIndex", "attempt"}
    statuses = metadata(real, workflow_id, includeKey="executionStatus")
    assert set(statuses) == {"id", "calls"}
    assert statuses["calls"]["hello.copy"] == [
        {"executionStatus": "Done", "shardIndex": -1, "attempt": 1}
    ]
    without_calls = metadata(real, workflow_id, excludeKey=["calls", "submittedFiles"])
    assert "calls" not in without_calls
    assert "submittedFiles" not in without_calls
    assert without_calls["status"] == "Succeeded"


def test_failing_task_reports_nested_failures(real: CromwellServer, moto_server: S3Server) -> None:
    workflow_id = submitted_id(real, FAILING_WDL)
    assert wait_for_status(real, workflow_id, {"Failed"}) == "Failed"

    failures = metadata(real, workflow_id, includeKey="failures")["failures"]
    assert failures[0]["message"] == "Workflow failed"
    cause = failures[0]["causedBy"][0]["message"]
    assert "breaks.boom" in cause
    assert "return code 3" in cause
    stderr_uri = cause.rsplit(": ", 1)[1].rstrip(".")
    assert stderr_uri.startswith(f"s3://{real.bucket}/breaks/{workflow_id}/call-boom/")
    assert "something went wrong in boom" in read_s3(moto_server, stderr_uri)

    boom = metadata(real, workflow_id)["calls"]["breaks.boom"][0]
    assert boom["executionStatus"] == "Failed"
    assert boom["returnCode"] == 3
    assert boom["stderr"] == stderr_uri
    assert "return code 3" in boom["failures"][0]["message"]
    outputs = requests.get(api(real, f"/{workflow_id}/outputs"), timeout=10).json()
    assert outputs == {"id": workflow_id, "outputs": {}}


def test_bad_inputs_fail_workflow_processing(real: CromwellServer) -> None:
    workflow_id = submitted_id(real, HELLO_WDL, workflowInputs={"hello.name": "no file given"})
    assert wait_for_status(real, workflow_id, {"Failed"}) == "Failed"
    failures = metadata(real, workflow_id)["failures"]
    assert failures[0]["message"] == "Workflow input processing failed"
    assert "greeting_file" in failures[0]["causedBy"][0]["message"]


def test_abort_stops_the_running_task_container(real: CromwellServer) -> None:
    workflow_id = submitted_id(real, SLEEPING_WDL)
    wait_for_status(real, workflow_id, {"Running"})
    deadline = time.monotonic() + 60
    while not containers_of(workflow_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert containers_of(workflow_id), "the task container never started"

    response = requests.post(api(real, f"/{workflow_id}/abort"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": workflow_id, "status": "Aborting"}
    assert wait_for_status(real, workflow_id, {"Aborted"}) == "Aborted"

    deadline = time.monotonic() + 60
    while containers_of(workflow_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_of(workflow_id) == []
    nap = metadata(real, workflow_id)["calls"]["sleeper.nap"][0]
    assert nap["executionStatus"] == "Aborted"

    again = requests.post(api(real, f"/{workflow_id}/abort"), timeout=10)
    assert again.status_code == 404
    assert again.json()["status"] == "error"


def test_stop_and_start_keep_the_workflows(real: CromwellServer) -> None:
    workflow_id = submitted_id(real, QUICK_WDL, workflowInputs={"quick.word": "kept"})
    wait_for_status(real, workflow_id, {"Succeeded"})
    real.stop()
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(api(real, f"/{workflow_id}/status"), timeout=5)
    finally:
        real.start()
    status = requests.get(api(real, f"/{workflow_id}/status"), timeout=10).json()
    assert status == {"id": workflow_id, "status": "Succeeded"}
    outputs = requests.get(api(real, f"/{workflow_id}/outputs"), timeout=10).json()
    assert outputs["outputs"] == {"quick.said": "kept"}


# -- Cromwell's API shapes (simulated mode: nothing to wait for) -----------------------------


def test_engine_routes(sim: CromwellServer) -> None:
    assert requests.get(f"{sim.url}/engine/v1/status", timeout=10).status_code == 200
    version = requests.get(f"{sim.url}/engine/v1/version", timeout=10).json()
    assert isinstance(version["cromwell"], str)
    backends = requests.get(api(sim, "/backends"), timeout=10).json()
    assert backends["defaultBackend"] in backends["supportedBackends"]


def test_requested_workflow_id_can_be_used_once(sim: CromwellServer) -> None:
    wanted = "0f1e2d3c-4b5a-4697-8877-665544332211"
    first = submit(sim, QUICK_WDL, requestedWorkflowId=wanted)
    assert first.status_code == 201
    assert first.json() == {"id": wanted, "status": "Submitted"}
    again = submit(sim, QUICK_WDL, requestedWorkflowId=wanted)
    assert again.status_code == 400
    body = again.json()
    assert body["status"] == "fail"
    assert wanted in body["message"]
    malformed = submit(sim, QUICK_WDL, requestedWorkflowId="not-a-uuid")
    assert malformed.status_code == 400


def test_submission_errors(sim: CromwellServer) -> None:
    no_source = requests.post(api(sim, ""), files={"labels": (None, "{}")}, timeout=10)
    assert no_source.status_code == 400
    assert no_source.json()["status"] == "fail"
    unexpected = submit(sim, QUICK_WDL, surprise="x")
    assert unexpected.status_code == 400
    assert "Unexpected body part name: surprise" in unexpected.json()["message"]
    bad_labels = submit(sim, QUICK_WDL, labels={"n": 1})
    assert bad_labels.status_code == 400


def test_new_workflows_answer_404_for_a_moment(sim: CromwellServer) -> None:
    sim.faults(submit_lag_s=3.0)
    workflow_id = submitted_id(sim, QUICK_WDL)
    status = requests.get(api(sim, f"/{workflow_id}/status"), timeout=10)
    assert status.status_code == 404
    assert status.json() == {
        "status": "fail",
        "message": f"Unrecognized workflow ID: {workflow_id}",
    }
    # (An abort reaches it meanwhile: the workflow store knows it; see test_cromwell_hardening.)
    query = requests.get(api(sim, "/query"), params={"id": workflow_id}, timeout=10).json()
    assert query == {"results": [], "totalResultsCount": 0}
    assert wait_for_status(sim, workflow_id, {"Submitted", "Running", "Succeeded"})
    malformed = requests.get(api(sim, "/nope/status"), timeout=10)
    assert malformed.status_code == 400


def test_query_by_ids_and_pages(sim: CromwellServer) -> None:
    inputs = [{"quick.word": f"w{i}"} for i in range(5)]
    response = requests.post(
        api(sim, "/batch"),
        files={
            "workflowSource": ("main.wdl", QUICK_WDL),
            "workflowInputs": (None, json.dumps(inputs)),
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    ids = [item["id"] for item in response.json()]
    assert len(set(ids)) == 5
    wanted = ids[:3]

    by_get = requests.get(api(sim, "/query"), params=[("id", i) for i in wanted], timeout=10)
    assert by_get.status_code == 200
    assert by_get.json()["totalResultsCount"] == 3
    assert {r["id"] for r in by_get.json()["results"]} == set(wanted)
    result = by_get.json()["results"][0]
    assert {"id", "status", "submission"} <= set(result)

    body = [{"id": i} for i in wanted]
    by_post = requests.post(api(sim, "/query"), json=body, timeout=10).json()
    assert {r["id"] for r in by_post["results"]} == set(wanted)

    pages = [
        requests.post(
            api(sim, "/query"), json=[*body, {"pageSize": "2"}, {"page": str(page)}], timeout=10
        ).json()
        for page in (1, 2)
    ]
    assert [len(p["results"]) for p in pages] == [2, 1]
    assert all(p["totalResultsCount"] == 3 for p in pages)
    assert {r["id"] for p in pages for r in p["results"]} == set(wanted)

    by_name = requests.get(api(sim, "/query"), params={"name": "quick"}, timeout=10).json()
    assert by_name["totalResultsCount"] == 5
    bad_status = requests.get(api(sim, "/query"), params={"status": "Sleeping"}, timeout=10)
    assert bad_status.status_code == 400
    unknown_key = requests.get(api(sim, "/query"), params={"colour": "red"}, timeout=10)
    assert unknown_key.status_code == 400
    not_string = requests.post(api(sim, "/query"), json=[{"pageSize": 2}], timeout=10)
    assert not_string.status_code == 400


def test_labels_metadata_and_hold(sim: CromwellServer) -> None:
    workflow_id = submitted_id(sim, QUICK_WDL, labels={"project": "a"})
    labels = requests.get(api(sim, f"/{workflow_id}/labels"), timeout=10).json()
    assert labels["labels"]["project"] == "a"
    patched = requests.patch(
        api(sim, f"/{workflow_id}/labels"), json={"project": "b", "stage": "x"}, timeout=10
    ).json()
    assert patched["labels"]["project"] == "b"
    assert patched["labels"]["stage"] == "x"
    found = requests.get(api(sim, "/query"), params={"label": "stage:x"}, timeout=10).json()
    assert [r["id"] for r in found["results"]] == [workflow_id]

    held = submit(sim, QUICK_WDL, workflowOnHold="true")
    assert held.json()["status"] == "On Hold"
    held_id = held.json()["id"]
    released = requests.post(api(sim, f"/{held_id}/releaseHold"), timeout=10)
    assert released.json() == {"id": held_id, "status": "Submitted"}
    assert wait_for_status(sim, held_id, {"Succeeded"}) == "Succeeded"
    outputs = requests.get(api(sim, f"/{held_id}/outputs"), timeout=10).json()["outputs"]
    assert set(outputs) == {"quick.said"}


def test_describe_validates_with_miniwdl(sim: CromwellServer) -> None:
    described = requests.post(
        f"{sim.url}/api/womtool/v1/describe",
        files={"workflowSource": ("main.wdl", HELLO_WDL)},
        timeout=30,
    ).json()
    assert described["valid"] is True
    assert described["validWorkflow"] is True
    assert described["name"] == "hello"
    names = {item["name"] for item in described["inputs"]}
    assert {"hello.greeting_file", "hello.name"} <= names
    assert "ferry/busybox:latest" in described["images"]
    outputs = {item["name"]: item["typeDisplayName"] for item in described["outputs"]}
    assert outputs["hello.shouts"] == "Array[File]"

    missing = requests.post(
        f"{sim.url}/api/womtool/v1/describe",
        files={
            "workflowSource": ("main.wdl", HELLO_WDL),
            "workflowInputs": (None, json.dumps({"hello.name": "x"})),
        },
        timeout=30,
    ).json()
    assert missing["valid"] is False
    assert missing["validWorkflow"] is True
    assert missing["errors"]

    broken = requests.post(
        f"{sim.url}/api/womtool/v1/describe",
        files={"workflowSource": ("main.wdl", "version 1.0\nworkflow w { call nowhere }\n")},
        timeout=30,
    ).json()
    assert broken["valid"] is False
    assert broken["errors"]


def test_a_registered_document_gets_cromwells_answer_and_runs_its_stand_in(
    sim: CromwellServer,
) -> None:
    keyword = "workflow w {\n  String left = 'x'\n}\n"  # draft-2; miniwdl: unexpected keyword

    def describe(source: str) -> dict[str, Any]:
        return dict(
            requests.post(
                f"{sim.url}/api/womtool/v1/describe",
                files={"workflowSource": ("main.wdl", source)},
                timeout=30,
            ).json()
        )

    assert describe(keyword)["valid"] is False  # left to itself: miniwdl's verdict
    sim.know_document(keyword, {"name": "w"}, "workflow w {\n  String left_x = 'x'\n}\n")
    answer = describe(keyword)
    assert answer["valid"] is True
    assert answer["name"] == "w"
    assert answer["isRunnableWorkflow"] is True
    assert describe(keyword + "\n")["valid"] is False  # only that exact text
    submitted = requests.post(
        f"{sim.url}/api/workflows/v1",
        files={"workflowSource": ("main.wdl", keyword)},
        timeout=30,
    )
    assert submitted.status_code == 201, submitted.text
    sim.reset()
    assert describe(keyword)["valid"] is False


def test_fault_switches(sim: CromwellServer) -> None:
    workflow_id = submitted_id(sim, QUICK_WDL)
    sim.faults(status_503_next=2)
    answers = [requests.get(api(sim, f"/{workflow_id}/status"), timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json()["status"] == "error"

    sim.faults(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(api(sim, f"/{workflow_id}/status"), timeout=10)
    assert requests.get(api(sim, f"/{workflow_id}/status"), timeout=10).status_code == 200

    sim.faults(down=True)
    with pytest.raises(requests.ConnectionError):
        requests.post(api(sim, "/query"), json=[{"id": workflow_id}], timeout=10)
    sim.faults(down=False)

    sim.faults(status_503_next=1)
    refused = submit(sim, QUICK_WDL)
    assert refused.status_code == 503
    assert refused.json()["status"] == "error"

    counters = sim.counters()
    assert counters["status"] == 5
    assert counters["submit"] == 2
    assert counters["queryPost"] == 1
    assert counters["_503"] == 3
    assert counters["_dropped"] == 2

    sim.faults(delay_s=2.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{sim.url}/engine/v1/version", timeout=0.5)


def test_simulated_failures_and_aborts(sim: CromwellServer) -> None:
    sim.settings(sim_fail_fraction=1.0)
    failing = submitted_id(sim, QUICK_WDL)
    assert wait_for_status(sim, failing, {"Failed"}) == "Failed"
    failures = metadata(sim, failing, includeKey="failures")["failures"]
    assert "return code" in failures[0]["causedBy"][0]["message"]

    sim.settings(sim_fail_fraction=0.0, sim_run_s=600.0)
    running = submitted_id(sim, QUICK_WDL)
    wait_for_status(sim, running, {"Running"})
    aborted = requests.post(api(sim, f"/{running}/abort"), timeout=10).json()
    assert aborted == {"id": running, "status": "Aborting"}
    assert wait_for_status(sim, running, {"Aborted"}) == "Aborted"


def test_two_thousand_simulated_workflows_in_two_query_pages(sim: CromwellServer) -> None:
    sim.settings(sim_run_s=600.0)  # the fixture's reset restores the timings
    ids = sim.simulate_bulk(2000)
    assert len(set(ids)) == 2000
    body = [{"id": i} for i in ids]
    seen: list[str] = []
    for page in (1, 2):
        response = requests.post(
            api(sim, "/query"),
            json=[*body, {"pageSize": "1000"}, {"page": str(page)}],
            timeout=60,
        )
        assert response.status_code == 200
        answer = response.json()
        assert answer["totalResultsCount"] == 2000
        assert len(answer["results"]) == 1000
        assert {r["status"] for r in answer["results"]} == {"Running"}
        seen.extend(r["id"] for r in answer["results"])
    assert sorted(seen) == sorted(ids)
    assert sim.counters()["queryPost"] == 2
