"""``GET /api/events/``: the events a user may see, as Server-Sent Events (ASGI only).

An async Django view outside DRF (a stream must not hold a thread). Who: the session cookie
(a browser's ``EventSource`` sends it), or ``?token=`` from ``POST /api/events/token/`` (valid
60 s, opens streams and nothing else): never the long-lived API token or JWT in a URL. What:
every event of the workspaces the user belongs to (staff: all), narrowed by ``?workspace=`` and
``?job=``. Each event's SSE ``id`` is its row id; a reconnect sends it back as
``Last-Event-ID`` (or ``?last_event_id=``) and gets exactly the events after it. A comment line
every ``FERRY_EVENTS_HEARTBEAT_SECONDS``; the server ends a stream after
``FERRY_EVENTS_MAX_SECONDS``, or as soon as its client is ``FERRY_EVENTS_QUEUE_MAX`` events
behind (a ``retry:`` hint first), and the browser reconnects from where it was. While a stream
is open, the worker polls the executors of the jobs it follows more often (api.watches).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..event_stream import close_connection, hub
from ..events import (
    may_see,
    stream_token_for,
    stream_token_seconds,
    user_of_stream_token,
    visible_events_after,
    visible_workspace_ids,
)
from ..models import User
from ..selectors import workspaces_visible_to
from ..serializers.events import EventStreamTokenSerializer
from ..watches import WatchScope
from .common import current_user


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Any:
    return JsonResponse({"code": code, "message": message, "details": details or {}}, status=status)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _header_user(request: HttpRequest) -> tuple[User | None, str]:
    """The user of the request's session cookie or ``Authorization`` header (API token, JWT):
    the authenticators of every other endpoint."""
    drf_request = Request(request, authenticators=APIView().get_authenticators())
    try:
        user = drf_request.user
    except APIException as exc:
        return None, str(exc.detail)
    if isinstance(user, User) and user.is_authenticated:
        return user, ""
    return None, (
        "Sign in (session cookie or Authorization header), or pass a stream token from "
        "POST /api/events/token/ as ?token=."
    )


async def _stream_user(request: HttpRequest) -> tuple[User | None, str]:
    token = request.GET.get("token")
    if token is not None:
        user = await sync_to_async(user_of_stream_token)(token)
        return user, (
            "The stream token is invalid or expired; get a new one from POST /api/events/token/."
        )
    return await sync_to_async(_header_user)(request)


def _uuid_param(request: HttpRequest, name: str) -> str | ValueError | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        return exc


def _last_event_id(request: HttpRequest) -> int | ValueError | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if raw is None or raw.strip() == "":
        return None
    if not raw.strip().isdigit() or int(raw.strip()) >= 2**63:  # ids are 64-bit
        return ValueError(raw)
    return int(raw.strip())


async def event_stream(request: HttpRequest) -> HttpResponseBase:
    user, why = await _stream_user(request)
    if user is None:
        return _error(401, "not_authenticated", why)
    if request.method != "GET":
        refused = _error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        refused["Allow"] = "GET"
        return refused
    workspace = _uuid_param(request, "workspace")
    job = _uuid_param(request, "job")
    last = _last_event_id(request)
    if isinstance(workspace, ValueError) or isinstance(job, ValueError):
        name = "workspace" if isinstance(workspace, ValueError) else "job"
        return _error(400, "invalid", f"{name} must be a UUID.", {name: ["Not a valid UUID."]})
    if isinstance(last, ValueError):
        return _error(
            400,
            "invalid",
            "Last-Event-ID must be an event id (a whole number).",
            {"Last-Event-ID": ["Not an event id."]},
        )
    visible = await sync_to_async(visible_workspace_ids)(user)
    if workspace is not None and not await sync_to_async(_sees_workspace)(user, workspace):
        return _error(404, "not_found", "No workspace with this id is visible to you.")
    if not isinstance(request, ASGIRequest):
        # Under WSGI Django would gather the whole (hour-long) stream before sending a byte:
        # the client would hang with nothing. Say so, so that it falls back to polling.
        return _error(
            503,
            "stream_needs_asgi",
            "The event stream is served by the ASGI app (uvicorn, as `make run` and the deploy "
            "units start Ferry); this server runs WSGI. Poll the lists (with If-None-Match) "
            "instead.",
        )
    response = StreamingHttpResponse(
        _events(user, visible, workspace, job, last), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


# A client too far behind: reconnect at once, with Last-Event-ID (EventSource does).
BEHIND = "retry: 500\n: behind: reconnect with Last-Event-ID to catch up\n\n"


def _frame(event: dict[str, Any]) -> str:
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"


class _Stream:
    """What one stream sends: the events after its cursor that its user may see."""

    def __init__(
        self, user: User, visible: set[str] | None, workspace: str | None, job: str | None
    ) -> None:
        self.user, self.user_id, self.visible = user, str(user.pk), visible
        self.workspace, self.job = workspace, job

    def wanted(self, event: dict[str, Any]) -> bool:
        if self.workspace is not None and event["workspace"] != self.workspace:
            return False
        if self.job is not None and event["job"] != self.job:
            return False
        return may_see(event, self.user_id, self.visible)

    async def catch_up(self, cursor: int) -> AsyncIterator[dict[str, Any]]:
        while True:
            batch = await sync_to_async(visible_events_after)(
                cursor, user=self.user, workspaces=self.visible
            )
            for event in batch:
                yield event
            if len(batch) < 500:
                return
            cursor = batch[-1]["id"]

    async def still_member(self, event: dict[str, Any]) -> bool:
        """After a change of this user's memberships: re-read what they see."""
        if event["kind"] != "membership.changed" or event["payload"].get("user") != self.user_id:
            return True
        self.visible = await sync_to_async(_visible_now)(self.user)
        return self.workspace is None or self.visible is None or self.workspace in self.visible


async def _events(
    user: User,
    visible: set[str] | None,
    workspace: str | None,
    job: str | None,
    last: int | None,
) -> AsyncIterator[str]:
    stream = _Stream(user, visible, workspace, job)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _setting("FERRY_EVENTS_MAX_SECONDS", 3600)
    heartbeat = _setting("FERRY_EVENTS_HEARTBEAT_SECONDS", 15)
    events_hub = hub()
    watch = WatchScope.of_stream(workspace=workspace, job=job, visible=visible)
    # Before the catch-up read: nothing falls between.
    queue, now = await events_hub.subscribe(watch)
    try:
        yield "retry: 2000\n: connected\n\n"
        cursor = now if last is None else last
        if last is not None:
            async for event in stream.catch_up(last):
                cursor = event["id"]
                if stream.wanted(event):
                    yield _frame(event)
        await sync_to_async(close_connection)()  # the hub reads for every stream from here
        while (left := deadline - loop.time()) > 0:
            if events_hub.fell_behind(queue):
                yield BEHIND
                return
            try:
                event = await asyncio.wait_for(queue.get(), timeout=min(heartbeat, left))
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if event["id"] <= cursor:
                continue  # already sent by the catch-up read
            cursor = event["id"]
            member = await stream.still_member(event)
            if stream.wanted(event):
                yield _frame(event)
            if not member:
                return  # no longer a member: the stream of that workspace ends here
    finally:
        await events_hub.unsubscribe(queue)


def _sees_workspace(user: User, workspace: str) -> bool:
    return workspaces_visible_to(user).filter(pk=workspace).exists()


def _visible_now(user: User) -> set[str] | None:
    try:
        return visible_workspace_ids(user)
    finally:
        connection.close()


class EventStreamTokenView(APIView):
    """A short-lived token for ``GET /api/events/?token=…`` (for clients that can't send the
    session cookie; the long-lived credential stays out of URLs)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={201: EventStreamTokenSerializer})
    def post(self, request: Request) -> Response:
        user = current_user(request)
        return Response(
            {"token": stream_token_for(user), "expires_in": stream_token_seconds()}, status=201
        )
