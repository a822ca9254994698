"""config.asgi sends only the async views and the streamed upload through Django's ASGI handler;
every other request is a sync view served by Django's WSGI handler in one thread hop (the ASGI
handler hops threads for each sync middleware, several times the cost per request)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.urls import URLPattern, URLResolver, get_resolver

from api import services
from api.models import User
from api.streamed_body import STREAMED_ROUTES
from config.asgi import ASYNC_PATHS, needs_event_loop
from tests.api.sse import asgi_server


def _patterns(resolver: URLResolver, prefix: str = "/") -> Iterator[tuple[str, Any]]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern).lstrip("^").rstrip("$")
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def _scope(method: str, path: str, kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": method, "path": path, "root_path": ""}


def test_every_async_view_is_served_by_the_asgi_handler() -> None:
    async_routes = {
        route
        for route, callback in _patterns(get_resolver())
        if asyncio.iscoroutinefunction(callback)
    }
    assert async_routes, "the event stream is an async view"
    assert async_routes <= ASYNC_PATHS
    for path in async_routes:
        assert needs_event_loop(_scope("GET", path))


@pytest.mark.parametrize(
    ("method", "path", "asgi"),
    [
        ("GET", "/api/events/", True),
        ("POST", "/api/events/token/", False),
        ("GET", "/api/jobs/", False),
        ("POST", "/api/jobs/", False),
        ("GET", "/healthz", False),
        ("GET", "/api/files/upload/", False),
        *[(method, path, True) for method, path in STREAMED_ROUTES],
    ],
)
def test_which_handler_serves_a_request(method: str, path: str, asgi: bool) -> None:
    assert needs_event_loop(_scope(method, path)) is asgi
    assert (
        needs_event_loop({**_scope(method, path), "root_path": "/ferry", "path": "/ferry" + path})
        is asgi
    )


def test_lifespan_goes_to_django() -> None:
    assert needs_event_loop({"type": "lifespan"})


@pytest.mark.django_db(transaction=True)
def test_sync_views_with_bodies_work_under_uvicorn() -> None:
    # The stream itself under uvicorn: tests/api/test_events_stream.py (same server).
    user = User.objects.create_user(email="dispatch@example.org", password="dispatch-pass-123")
    _token, key = services.api_token_create(user=user, name="dispatch")
    headers = {"Authorization": f"Token {key}"}
    with asgi_server() as base:
        created = requests.post(
            f"{base}/api/workspaces/", json={"name": "dispatched"}, headers=headers, timeout=30
        )
        assert created.status_code == 201, created.text
        listed = requests.get(f"{base}/api/workspaces/", headers=headers, timeout=30)
        assert listed.status_code == 200
        assert [row["name"] for row in listed.json()["results"]] == ["dispatched"]
        bad = requests.post(
            f"{base}/api/workspaces/",
            data=b"{not json",
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        assert bad.status_code == 400
