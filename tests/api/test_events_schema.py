"""The event stream is in the OpenAPI schema (Swagger): ``GET /api/events/`` (a plain async view
that drf-spectacular can't see, documented by api.schema's hook) with its parameters, the
Last-Event-ID header and a ``text/event-stream`` answer, beside ``POST /api/events/token/``."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    loaded: dict[str, Any] = yaml.safe_load(response.content)
    return loaded


def test_the_stream_is_documented_with_its_parameters_and_media_type(
    schema: dict[str, Any],
) -> None:
    stream = schema["paths"]["/api/events/"]["get"]
    assert stream["tags"] == ["events"]
    assert "Last-Event-ID" in stream["description"]
    where = {(p["in"], p["name"]) for p in stream["parameters"]}
    assert {
        ("query", "workspace"),
        ("query", "job"),
        ("query", "token"),
        ("query", "last_event_id"),
        ("header", "Last-Event-ID"),
    } <= where
    ok = stream["responses"]["200"]["content"]
    assert list(ok) == ["text/event-stream"]
    for code in ("400", "401", "404", "503"):
        error = stream["responses"][code]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}


def test_the_stream_token_is_documented_beside_the_stream(schema: dict[str, Any]) -> None:
    paths = list(schema["paths"])
    assert paths.index("/api/events/") + 1 == paths.index("/api/events/token/")
    token = schema["paths"]["/api/events/token/"]["post"]
    assert token["tags"] == ["events"]
    answer = token["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/EventStreamToken"}
