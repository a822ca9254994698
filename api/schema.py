"""OpenAPI: every operation documents the error responses it can give, in the one error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions, serializers

from .views.conditional import IF_MATCH, IF_NONE_MATCH, answers_conditional_get, answers_if_match


class ErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="A stable machine-readable code, e.g. `invalid`, `not_found`."
    )
    message = serializers.CharField(
        help_text="A sentence for people: what is wrong and what to do."
    )
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field, header or query parameter at fault (`a.b[0].c` for nested ones).",
    )


_DESCRIPTIONS = {
    "400": "Bad input; `details` names each field, header or parameter at fault.",
    "401": "Not signed in (session, JWT `Bearer` or API `Token`).",
    "403": "Signed in, but your role does not allow this.",
    "404": "No such resource, or not one you can see.",
    "409": "Conflicts with the current state (e.g. duplicate member, last owner, active jobs).",
    "412": "If-Match names another version than the current one: GET the resource again.",
    "422": "The Idempotency-Key was used for another request (method, path, query or body).",
}

ETAG_HEADER = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="The version of what this GET answers: send it back as If-None-Match (304 "
    "while nothing changed) or, for the resource itself, as If-Match on a write.",
)
IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    IF_NONE_MATCH,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="ETags you hold (or `*`): 304 without a body while one is current.",
)
IF_MATCH_PARAMETER = OpenApiParameter(
    IF_MATCH,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag of the resource as you last read it (GET on it): the write is "
    "refused with 412 if it changed since. Optional; `*` matches any version.",
)
NOT_MODIFIED = OpenApiResponse(
    description="Not modified: If-None-Match names the current ETag; no body."
)


# Swagger groups operations by these tags, in this order: the resource a path starts with.
RESOURCE_TAGS = {
    "auth": "auth",
    "workspaces": "workspaces",
    "files": "files",
    "sets": "sets",
    "operations": "operations",
    "jobs": "jobs",
    "events": "events",
    "credentials": "credentials",
    "cromwell-servers": "cromwell-servers",
    "executors": "executors",
}
HEALTH_TAG = "health"


def resource_tag(path: str) -> str:
    """The tag of a path: its resource (``/api/files/uploads/…`` → ``files``), ``health`` for
    the probes outside ``/api/``."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return RESOURCE_TAGS.get(parts[1], parts[1])
    return HEALTH_TAG


class FerryAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        return [resource_tag(self.path)]

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if answers_conditional_get(self.view, self.method):
            parameters += [IF_NONE_MATCH_PARAMETER, ETAG_HEADER]
        if answers_if_match(self.view, self.method):
            parameters.append(IF_MATCH_PARAMETER)
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        codes = []
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        # Lists refuse a bad cursor, page_size or ordering; filters refuse bad values.
        if writes or self._has_query_filters() or self._is_list_view():
            codes.append("400")
        public = any(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())
        if not public:
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if writes:
            codes.append("409")
        if answers_if_match(self.view, self.method):
            codes.append("412")
        if any(getattr(p, "name", "") == "Idempotency-Key" for p in self.get_override_parameters()):
            codes.append("422")
        if answers_conditional_get(self.view, self.method) and "304" not in responses:
            responses["304"] = self._get_response_for_code(NOT_MODIFIED, "304", direction=direction)
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]),
                    code,
                    direction=direction,
                )
        return responses

    def _has_query_filters(self) -> bool:
        return bool(
            getattr(self.view, "filterset_class", None)
            or getattr(self.view, "filterset_fields", None)
        )


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A personal API token: `Token fry_…` (from /api/auth/api-tokens/).",
        }


# ------------------------------------------------------------------- the event stream (not DRF)

EVENT_STREAM_PATH = "/api/events/"
_STREAM_DESCRIPTION = """\
Server-Sent Events (`text/event-stream`, served by the ASGI app): every event of the workspaces
you belong to (staff: all), narrowed by `workspace` and `job`. Each event is a frame
`id: <event id>` / `event: <kind>` / `data: <the event as JSON>`; a comment line is sent as a
heartbeat while nothing happens. Reconnect with the last id you received as `Last-Event-ID`
(a browser's `EventSource` does) to get exactly the events after it: nothing lost, nothing
repeated. The server ends a stream after a while, or when the client reads too slowly; the
`retry:` hint tells the client when to reconnect. Sign in with the session cookie, or pass a
short-lived `token` from `POST /api/events/token/` (never the long-lived API token in a URL)."""


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _stream_parameters() -> list[dict[str, Any]]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "in": "query",
            "name": name,
            "required": False,
            "schema": schema,
            "description": description,
        }

    uuid_schema = {"type": "string", "format": "uuid"}
    return [
        query("workspace", "Only this workspace's events.", uuid_schema),
        query("job", "Only this job's events.", uuid_schema),
        query(
            "token",
            "A stream token from POST /api/events/token/ (for clients that can't send the "
            "session cookie).",
            {"type": "string"},
        ),
        query(
            "last_event_id",
            "As the Last-Event-ID header, for clients that can't set headers.",
            {"type": "integer", "minimum": 0},
        ),
        {
            "in": "header",
            "name": "Last-Event-ID",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "The id of the last event received: the stream starts after it.",
        },
    ]


def event_stream_operation() -> dict[str, Any]:
    """The OpenAPI operation of ``GET /api/events/`` (a plain async Django view, which
    drf-spectacular can't see)."""
    return {
        "operationId": "events_stream",
        "summary": "Follow what changes, as Server-Sent Events",
        "description": _STREAM_DESCRIPTION,
        "tags": [RESOURCE_TAGS["events"]],
        "parameters": _stream_parameters(),
        "security": [{"cookieAuth": []}, {}],
        "responses": {
            "200": {
                "description": "The stream: `id:`/`event:`/`data:` frames, heartbeats, `retry:`.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": _error_response(_DESCRIPTIONS["400"]),
            "401": _error_response(
                "Neither a session nor a valid stream token (they expire after a minute)."
            ),
            "404": _error_response("The workspace is not one you can see."),
            "503": _error_response(
                "This server runs WSGI, which can't stream (`stream_needs_asgi`): poll instead."
            ),
        },
    }


def add_event_stream(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the event stream beside its token."""
    paths: dict[str, Any] = result.get("paths", {})
    ordered: dict[str, Any] = {}
    for path, item in paths.items():
        if path.startswith(EVENT_STREAM_PATH) and EVENT_STREAM_PATH not in ordered:
            ordered[EVENT_STREAM_PATH] = {}
        ordered[path] = item
    ordered.setdefault(EVENT_STREAM_PATH, {})["get"] = event_stream_operation()
    result["paths"] = ordered
    return result
