"""Conditional requests for every API view: an ETag on each JSON detail and list, 304 for a
matching If-None-Match, 412 for a write whose If-Match names a stale version.

The entity tag is a hash of the JSON bytes the view answers, taken once they are rendered (no
second rendering): it changes with every visible change — a job's status set by the worker, a file
becoming ready, a member added to a workspace changing its list — because it is the content
itself, with nothing to keep in step. A version from ``updated_at`` would miss what a detail
shows from other rows (a workspace's ``file_count``, a job's output files, the caller's role).
The server renders the body either way, so a tag costs only the hashing (~0.1 ms for a
50-file page of 31 kB); a 304 saves the transfer and the client's parsing.

Writes on one resource (PATCH, PUT, DELETE and POST actions such as ``/jobs/{id}/cancel/``)
compare If-Match with the tag of what GET on the resource answers now, after the lookup and
the permission checks (someone who can't see the resource gets 404, never 412). If-Match is
optional; ``*`` matches any current version. Check and write are one: a write with If-Match
runs in a transaction that locks the resource's row (SELECT … FOR UPDATE) before its tag is
taken, so of two writers naming the same version one writes and the other gets 412, and a
change committed between the check and the write can't slip through.

The browsable API's HTML is left to Django's ConditionalGetMiddleware (a hash of the page's
bytes): its pages carry a fresh CSRF token, so they never answer 304.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.http import parse_etags
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from ..exception_handlers import error_body
from ..exceptions import PreconditionFailed, field_error
from ..renderers import FastJSONRenderer

IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"


def body_etag(body: bytes) -> str:
    """The strong entity tag of an answer's bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def representation_etag(data: Any) -> str:
    """The tag of ``data`` as a GET answers it in JSON (the renderer's default form)."""
    return body_etag(FastJSONRenderer().render(data))


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def none_match(header: str, etag: str) -> bool:
    """Whether If-None-Match's ``header`` lets the request through: weak comparison, lists and
    ``*`` (RFC 9110, section 13.1.2)."""
    tags = parse_etags(header)
    return not ("*" in tags or any(_opaque(tag) == _opaque(etag) for tag in tags))


def if_match_holds(header: str, etag: str) -> bool:
    """Whether If-Match's ``header`` names ``etag``: strong comparison, lists and ``*``
    (RFC 9110, section 13.1.1). A weak tag never matches; a header that holds no entity tag
    at all is refused (400) rather than read as a stale version."""
    tags = parse_etags(header)
    if not tags:
        raise field_error(
            IF_MATCH, 'Must be * or entity tags in double quotes, as ETag gives them: "…".'
        )
    return "*" in tags or etag in tags


def stale_version() -> PreconditionFailed:
    message = (
        "The resource changed since you read it: If-Match names another version. "
        "GET it again for its current ETag and retry."
    )
    return PreconditionFailed(message, details={IF_MATCH: [message]})


def _answers_json(request: Request) -> bool:
    """Whether the response is JSON (not the browsable API's HTML)."""
    return type(getattr(request, "accepted_renderer", None)) is FastJSONRenderer


def _tag_rendered(request: Request) -> Callable[[Response], HttpResponseBase | None]:
    """A post-render callback: tag the rendered bytes; answer 304 (no body) when
    If-None-Match names the tag, 412 when a GET's If-Match names another."""

    def tag(response: Response) -> HttpResponseBase | None:
        etag = body_etag(response.content)
        response["ETag"] = etag
        if_match = parse_etags(request.headers.get(IF_MATCH) or "")
        if if_match and not ("*" in if_match or etag in if_match):
            error = stale_version()
            return JsonResponse(
                error_body(error.code, error.message, error.details), status=error.status_code
            )
        header = request.headers.get(IF_NONE_MATCH)
        if header is not None and not none_match(header, etag):
            # The headers of the 200 stay (ETag, Vary, Allow; CORS is added after).
            response.status_code = 304
            response.content = b""
            del response["Content-Type"]
        return None

    return tag


if TYPE_CHECKING:  # the mixin goes on DRF's generic views; type-check it as one
    _View = GenericAPIView[Any]
else:
    _View = object


class ConditionalRequestsMixin(_View):
    """ETag / If-None-Match / If-Match for a DRF view; put it first among the bases."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and isinstance(response, Response)
            and response.data is not None
            and not response.has_header("ETag")
            and _answers_json(request)
        ):
            response.add_post_render_callback(_tag_rendered(request))
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.headers.get(IF_MATCH) is None or not answers_if_match(
            self, request.method or ""
        ):
            return super().dispatch(request, *args, **kwargs)
        # The check (in ``initial``) and the write share one transaction and the row lock
        # taken there, held until the write commits.
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        header = request.headers.get(IF_MATCH)
        if header is None or not answers_if_match(self, request.method or ""):
            return
        # The lookup and its permission checks come first: 404 for a resource the caller
        # can't see, 403 for a write their role doesn't allow, whatever the header says.
        if not if_match_holds(header, self.current_etag(self.locked_object())):
            raise stale_version()

    def locked_object(self) -> Any:
        """The resource, read again once its row is locked for this transaction: a writer
        that got the lock first has committed, and what is read is what the write changes."""
        instance = self.get_object()
        model = type(instance)
        list(model._default_manager.select_for_update().filter(pk=instance.pk).values_list("pk"))
        fresh = self.get_object()
        if fresh is instance:  # (a view whose object is kept, e.g. request.user)
            fresh.refresh_from_db()
        return fresh

    def current_etag(self, instance: Any) -> str:
        """The tag GET on ``instance``'s own route answers now (its ``retrieve``)."""
        view: Any = self
        action = getattr(view, "action", None)
        view.action = "retrieve"
        try:
            data = view.get_serializer(instance).data
        finally:
            view.action = action
        return representation_etag(data)


def takes_if_match(view: Any) -> bool:
    """Whether the view's writes are checked against If-Match: it answers GET on the same
    resource (a ``retrieve``), so a client has a tag to send."""
    return isinstance(view, ConditionalRequestsMixin) and callable(getattr(view, "retrieve", None))


def answers_conditional_get(view: Any, method: str) -> bool:
    """Whether a GET on this view answers with an ETag and honours If-None-Match."""
    return method == "GET" and isinstance(view, ConditionalRequestsMixin)


def answers_if_match(view: Any, method: str) -> bool:
    """Whether a write on this view's route honours If-Match: a write on one resource (a
    viewset's detail route, or a single-object view) whose GET gives the tag."""
    return method not in SAFE_METHODS and takes_if_match(view) and getattr(view, "detail", True)
