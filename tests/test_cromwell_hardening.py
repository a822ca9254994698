"""Only Cromwell's own word fails a job: summary lag, aborts of starting workflows, a Cromwell
without ``describe``, the environment form of a server; and the test server behaving as
Cromwell's REST reference says (abort during the post-submit lag, query keys, media types,
``workflowUrl``)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.test_cromwell_server import QUICK_WDL, api, submit, submitted_id, wait_for_status

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
    assert described["valid"] is True and described["name"] == "quick"

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
    assert status.status_code == 200 and status.json()["status"] == "Submitted"
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
        "abort_lag_s": 0.0,
        "query_lag_s": 0.0,
        "submit_lag_s": 1.0,
    }
