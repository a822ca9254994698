"""POST /api/jobs/ costs a fixed, small number of SQL statements: the operation, the workspace
with the caller's role in one query, the job and its first event (no savepoint of their own),
and nothing for the new job's (not yet existing) output files."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api.models import Workspace
from tests.operations_fixtures import make_operation

# Operation; workspace + role; SAVEPOINT (the test's transaction stands in for BEGIN), the job's
# INSERT, the event writers' lock, the event's INSERT, NOTIFY, RELEASE (for COMMIT).
JOB_CREATE_MAX_STATEMENTS = 8


@pytest.mark.django_db
def test_creating_a_job_costs_a_fixed_few_statements(
    workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    operation = make_operation("noop", "true")
    client = client_for("editor")
    body = {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}}
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/api/jobs/", body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["output_files"] == []
        statements = [q["sql"] for q in queries.captured_queries]
        assert len(statements) <= JOB_CREATE_MAX_STATEMENTS, "\n".join(statements)


@pytest.mark.django_db
def test_a_viewer_is_still_refused_and_a_stranger_still_told_no_such_workspace(
    workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    operation = make_operation("noop", "true")
    body = {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": {}}
    viewer = client_for("viewer").post("/api/jobs/", body, format="json")
    assert viewer.status_code == 403, viewer.content
    stranger = client_for("other").post("/api/jobs/", body, format="json")
    assert stranger.status_code == 400, stranger.content
    assert "workspace" in stranger.json()["details"]
