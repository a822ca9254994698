"""Idempotent creates: a client that never got the answer to a create (its connection dropped,
the web process was killed) sends it again with the same ``Idempotency-Key`` header and gets the
first answer, instead of creating a second workspace, job or file.

The key is recorded in the same database transaction as what the request creates, so a request
killed midway leaves neither. Keys belong to their user; the same key with another request
(method, path, query or body) is refused (422); a second request with a key whose first request
is still being answered is refused (409) — retry it after a moment. Keys are forgotten after
FERRY_IDEMPOTENCY_KEY_TTL_S.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import ApplicationError, Conflict
from .models import IdempotencyKey, User
from .storage.uploads import SpooledUpload

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces: UUIDs, ULIDs, random tokens…
_KEY = re.compile(r"[\x21-\x7e]{1,255}")

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "Makes the create safe to retry: a request sent again with the same key and the same "
        "method, path, query and body is answered with the first answer (and the header "
        f"`{REPLAYED_HEADER}: true`) instead of creating again. 1 to 255 printable ASCII "
        "characters, e.g. a UUID; one per create, kept 24 hours. The same key with another "
        "request answers 422; while the first request with the key is still being answered, "
        "409."
    ),
)


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; 400 naming the header if malformed."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        message = "Must be 1 to 255 printable ASCII characters without spaces (e.g. a UUID)."
        raise ApplicationError(message, code="invalid", details={HEADER: [message]})
    return raw


def _canonical(value: Any) -> Any:
    """A JSON-able stand-in for request data: uploaded files by their name, size and sha256
    (computed while they were spooled, so a large body is never read twice)."""
    if isinstance(value, SpooledUpload):
        return {"file": value.name, "size": value.received, "sha256": value.sha256}
    if isinstance(value, QueryDict):
        return {key: [_canonical(v) for v in value.getlist(key)] for key in sorted(value)}
    if isinstance(value, dict):
        return {str(key): _canonical(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_sha256(request: Request, body: Any) -> str:
    """The sha256 identifying a request: method, path, query parameters and ``body``."""
    described = {
        "method": request.method,
        "path": request.path,
        "query": _canonical(request.query_params),
        "body": _canonical(body),
    }
    text = json.dumps(described, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def claim_lock_id(user: User, key: str) -> int:
    """The Postgres advisory lock a request holds while it answers with ``key``."""
    digest = hashlib.sha256(f"ferry-idempotency-key:{user.pk}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _claim(user: User, key: str) -> None:
    """Take the key for this transaction, or refuse (409) while another request holds it.
    Postgres: an advisory lock, released when the transaction (or its connection) ends."""
    if connection.vendor != "postgresql":
        return  # SQLite serializes writers; the unique constraint decides
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [claim_lock_id(user, key)])
        (taken,) = cursor.fetchone()
    if not taken:
        raise _in_flight()


def _in_flight() -> Conflict:
    message = (
        "A request with this Idempotency-Key is still being answered; send it again in a "
        "moment to get its answer."
    )
    return Conflict(message, code="idempotency_key_in_flight", details={HEADER: [message]})


def _reused() -> ApplicationError:
    message = (
        "This Idempotency-Key was used for another request (method, path, query or body "
        "differ); use a new key for a new request."
    )
    return ApplicationError(
        message, code="idempotency_key_reused", status_code=422, details={HEADER: [message]}
    )


def answer_once(
    request: Request, *, user: User, body: Any, create: Callable[[], Response]
) -> Response:
    """Answer a create: without an Idempotency-Key, ``create()``; with one, the stored answer
    of an earlier request with the key, or ``create()`` with its 2xx answer recorded in the
    same transaction."""
    key = idempotency_key(request)
    if key is None:
        return create()
    fingerprint = request_sha256(request, body)
    try:
        with transaction.atomic():
            _claim(user, key)
            found = IdempotencyKey.objects.filter(user=user, key=key).first()
            if found is not None and found.created_at < _expired_before():
                found.delete()
                found = None
            if found is not None:
                if found.request_sha256 != fingerprint:
                    raise _reused()
                return Response(
                    found.response_body,
                    status=found.response_status,
                    headers={REPLAYED_HEADER: "true"},
                )
            response = create()
            if 200 <= response.status_code < 300:
                IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    method=request.method or "",
                    path=request.path[:2048],
                    request_sha256=fingerprint,
                    response_status=response.status_code,
                    response_body=response.data,
                )
            return response
    except IntegrityError:
        # Another request recorded the key first (only without advisory locks): nothing of
        # this one was kept.
        if IdempotencyKey.objects.filter(user=user, key=key).exists():
            raise _in_flight() from None
        raise


ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Response])


def idempotent_create(view_method: ViewMethod) -> ViewMethod:
    """Decorates a view's create method (JSON or multipart) with :func:`answer_once`; the body
    is the parsed request data. Uploaded parts of a replayed request are closed (removed)."""

    @functools.wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.headers.get(HEADER) is None:
            return view_method(view, request, *args, **kwargs)
        called = False

        def create() -> Response:
            nonlocal called
            called = True
            return view_method(view, request, *args, **kwargs)

        try:
            user = cast(User, request.user)
            return answer_once(request, user=user, body=request.data, create=create)
        finally:
            if not called:
                for part in request.FILES.values():
                    part.close()

    return wrapper  # type: ignore[return-value]


def _expired_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.FERRY_IDEMPOTENCY_KEY_TTL_S)


def idempotency_keys_expire() -> int:
    """Forget keys older than FERRY_IDEMPOTENCY_KEY_TTL_S (scheduled); how many."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=_expired_before()).delete()
    return deleted
