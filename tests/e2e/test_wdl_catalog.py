"""The runnable WDL fixtures (imports, optional inputs and defaults, scatter, WDL 1.1, draft-2)
added through Ferry's ingestion and run through the API on both engines: miniwdl (the embedded
default) and a Cromwell server (the test server), with their results as Files in the workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import File, Workspace
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job, wait_terminal
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401 - fixtures
    EXECUTOR,
    cromwell,
    server_record,
    site_bucket,
    upload,
    var_dir,
)
from tests.operations_fixtures import make_wdl_operation

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FIXTURES = Path(__file__).parents[1] / "wdl_fixtures"

# case -> (inputs, given the uploaded files; expected simple outputs; expected file contents)
CASES: dict[
    str, tuple[Callable[[dict[str, str]], dict[str, Any]], dict[str, Any], dict[str, bytes]]
] = {
    "imports": (
        lambda f: {"table": f["table"], "keep": 2},
        {"loud": "A\tB"},
        {"head": b"a\tb\n1\t2\n"},
    ),
    "optional_defaults": (
        lambda f: {"names": ["x", "y", "z"], "repeat": 1, "limit": 2, "extra": f["extra"]},
        {"lines": 2, "ratio_used": 1.0},
        {"greetings": b"hello x.\nhello y.\n"},
    ),
    "scatter": (lambda f: {"count": 2}, {"squares": [0, 1], "total": 1}, {}),
    "wdl11": (lambda f: {"words": ["a", "b"]}, {"joined": "a,b"}, {}),
    "draft2": (lambda f: {"name": "ada", "times": 1}, {"lines": 1}, {}),
}
ENGINES = ["local-miniwdl", EXECUTOR]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_wdl_fixture_runs_through_the_api(
    case: str,
    engine: str,
    request: pytest.FixtureRequest,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    if engine == EXECUTOR:
        request.getfixturevalue("server_record")
    operation = make_wdl_operation(FIXTURES / case)
    client = client_for("owner")
    files = {
        "table": upload(client, workspace, "t.tsv", b"a\tb\n1\t2\n3\t4\n"),
        "extra": upload(client, workspace, "extra.txt", b"and one more\n"),
    }
    make_inputs, values, contents = CASES[case]
    job = run_job(
        client,
        {
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": make_inputs(files),
            "executor": engine,
        },
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(job["id"], timeout=180)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    for name, expected in values.items():
        got = done.outputs[name]
        assert (got.strip() if isinstance(got, str) else got) == expected, name
    for name, expected_bytes in contents.items():
        stored = File.objects.get(pk=done.outputs[name])
        assert stored.produced_by_id == done.pk
        body = client.get(f"/api/files/{stored.pk}/download/")
        assert b"".join(body.streaming_content) == expected_bytes  # type: ignore[attr-defined]
    declared_files = [n for n, o in operation.spec["outputs"].items() if o.get("type") == "file"]
    for name in declared_files:
        if name in done.outputs:
            assert File.objects.filter(pk=done.outputs[name], produced_by=done).exists()


def test_a_cromwell_server_from_settings(
    settings: Any,
    request: pytest.FixtureRequest,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A Cromwell in settings.EXECUTORS (FERRY_CROMWELL_URL) is routed to like any executor."""
    server = request.getfixturevalue("cromwell")
    request.getfixturevalue("site_bucket")
    settings.EXECUTORS = {
        **settings.EXECUTORS,
        "cromwell": {
            "BACKEND": "executors.cromwell.CromwellExecutor",
            "OPTIONS": {
                "url": server.url,
                "inputs_location": f"s3://{server.bucket}/ferry-inputs/",
            },
        },
    }
    settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "wdl": "cromwell"}
    operation = make_wdl_operation(FIXTURES / "scatter")
    job = run_job(
        client_for("owner"),
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {"count": 2}},
        django_capture_on_commit_callbacks,
    )
    assert job["executor"] == "cromwell"
    done = wait_terminal(job["id"], timeout=180)
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert done.outputs["total"] == 1
    assert server.counters().get("submit") == 1
