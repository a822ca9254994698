"""Registered Cromwell servers and their logins: checked against the (simulated) server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.credentials import credential_create
from api.models import User
from tests.harness.buckets import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_cromwell_logins_are_checked_when_saved(cromwell_sim: Any, users: dict[str, User]) -> None:
    good = credential_create(
        user=users["staff"],
        name="cromwell-login",
        kind="cromwell",
        config={"url": cromwell_sim.url},
        secret={"username": "ferry", "password": "s3cret-pw"},
    )
    assert good.check_ok is True, good.check_message
    (port,) = free_ports(1)
    bad = credential_create(
        user=users["staff"],
        name="nowhere",
        kind="cromwell",
        config={"url": f"http://127.0.0.1:{port}"},
        secret={"username": "ferry", "password": "s3cret-pw"},
    )
    assert bad.check_ok is False
    assert "can't be reached" in bad.check_message
    assert "s3cret-pw" not in bad.check_message


def test_server_records_refuse_bad_input(
    cromwell_sim: Any, users: dict[str, User], client_for: Callable[[str], APIClient]
) -> None:
    staff = client_for("staff")
    bucket_login = credential_create(
        user=users["staff"],
        name="not-cromwell",
        kind="cromwell",
        config={"url": cromwell_sim.url},
        secret={},
    )
    created = staff.post(
        "/api/cromwell-servers/",
        {"name": "sim", "url": cromwell_sim.url, "credential": str(bucket_login.pk)},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["healthy"] is True
    assert created.json()["version"]
    duplicate = staff.post(
        "/api/cromwell-servers/", {"name": "sim", "url": cromwell_sim.url}, format="json"
    )
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()["details"]
    unknown = staff.post(
        "/api/cromwell-servers/",
        {"name": "other", "url": cromwell_sim.url, "options": {"colour": "red"}},
        format="json",
    )
    assert unknown.status_code == 400
    assert "options" in unknown.json()["details"]
    bad_location = staff.post(
        "/api/cromwell-servers/",
        {"name": "other", "url": cromwell_sim.url, "options": {"inputs_location": "ftp://x"}},
        format="json",
    )
    assert bad_location.status_code == 400
    assert "options.inputs_location" in bad_location.json()["details"]
    not_a_url = staff.post("/api/cromwell-servers/", {"name": "x", "url": "nope"}, format="json")
    assert not_a_url.status_code == 400
    assert "url" in not_a_url.json()["details"]


def test_scheduled_health_checks_follow_the_server(cromwell_sim: Any) -> None:
    from django_q.models import Schedule

    from operations.cromwell_servers import check_all_servers, server_create

    assert Schedule.objects.filter(func="operations.cromwell_servers.check_all_servers").exists()
    server = server_create(name="sim", url=cromwell_sim.url)
    assert server.healthy is True
    cromwell_sim.stop()
    try:
        assert check_all_servers() == 1
        server.refresh_from_db()
        assert server.healthy is False
        assert "unreachable" in server.health_message
    finally:
        cromwell_sim.start()
    check_all_servers()
    server.refresh_from_db()
    assert server.healthy is True


def test_server_options_are_checked_like_the_executor_does(
    cromwell_sim: Any, client_for: Callable[[str], APIClient]
) -> None:
    response = client_for("staff").post(
        "/api/cromwell-servers/",
        {
            "name": "bad-options",
            "url": cromwell_sim.url,
            "options": {"timeouts": {"read": -1}, "query_page_size": 0},
        },
        format="json",
    )
    assert response.status_code == 400
    assert len(response.json()["details"]["options"]) == 2


def test_a_credential_in_use_is_not_deleted(
    cromwell_sim: Any, users: dict[str, User], client_for: Callable[[str], APIClient]
) -> None:
    from operations.cromwell_servers import server_create, server_delete

    login = credential_create(
        user=users["staff"],
        name="in-use",
        kind="cromwell",
        config={"url": cromwell_sim.url},
        secret={"token": "t0ken"},
    )
    server = server_create(name="sim", url=cromwell_sim.url, credential=login)
    staff = client_for("staff")
    refused = staff.delete(f"/api/credentials/{login.pk}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "credential_in_use"
    server_delete(server=server)
    assert staff.delete(f"/api/credentials/{login.pk}/").status_code == 204
