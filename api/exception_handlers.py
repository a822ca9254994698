"""One error shape for every 4xx/5xx: ``{"code", "message", "details"}``.

Services raise :class:`~api.exceptions.ApplicationError` (or its subclasses); the exception
handler here maps every error to HTTP, for DRF views (``exception_handler``) and for Django's own
answers (``json_400``, ``json_403``, ``json_404``, ``json_500``, ``csrf_failure``).
``details`` maps a field (or header, or query parameter) to its messages.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from .exceptions import ApplicationError, body_too_large

logger = logging.getLogger(__name__)


def _suspicious_request(exc: SuspiciousOperation) -> ApplicationError:
    """Django refuses some bodies while reading them; answer them in the one shape."""
    if isinstance(exc, RequestDataTooBig):
        return body_too_large()
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        message = "The request has too many form fields or files."
        return ApplicationError(message, code="too_many_fields", details={"body": [message]})
    return ApplicationError("Bad request.", code="bad_request")


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"a.b[0].c": [messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                for k, v in _flatten(item, f"{prefix}[{index}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def error_body(
    code: str, message: str, details: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


# The database can't be reached (restarting, failed over, out of connections): a passing state,
# answered 503 with Retry-After, and the connection is replaced on the next request
# (CONN_HEALTH_CHECKS).
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again in a few seconds."
DATABASE_RETRY_AFTER_S = 5


def _database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if _database_unavailable(exc):
        logger.warning("database unavailable in %s: %s", context.get("view"), exc)
        return Response(
            error_body(DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    if isinstance(exc, SuspiciousOperation):
        exc = _suspicious_request(exc)
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(details)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log it with the traceback, answer in the same shape without internals.
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            error_body("server_error", "An internal error occurred; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten(exc.detail)
        first = next(iter(details.items()), None)
        message = f"{first[0]}: {first[1][0]}" if first else "Invalid input."
        response.data = error_body("invalid", message, details)
    elif isinstance(exc.detail, dict):
        # simplejwt's errors: {"detail": …, "code": …, "messages": [about each token tried]}.
        detail = exc.detail
        messages = next(iter(_flatten(detail).values()), [str(exc.default_detail)])
        message = str(detail.get("detail") or messages[0])
        code = str(detail.get("code") or exc.default_code)
        response.data = error_body(code, message)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), str(exc.detail))
    return response


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "No such resource."), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception (outside DRF: middleware, admin).
    if _database_unavailable(sys.exc_info()[1]):
        response = JsonResponse(
            error_body(DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE), status=503
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    return JsonResponse(
        error_body("server_error", "An internal error occurred; it has been logged."), status=500
    )


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's answer to a request refused before (or outside) a DRF view, e.g. a form body
    over DATA_UPLOAD_MAX_MEMORY_SIZE read by the CSRF middleware."""
    if isinstance(exception, SuspiciousOperation):
        error = _suspicious_request(exception)
        return JsonResponse(
            error_body(error.code, error.message, error.details), status=error.status_code
        )
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return JsonResponse(
        error_body(
            "csrf_failed",
            f"CSRF check failed ({reason}). Send the csrftoken cookie's value in X-CSRFToken, "
            "or sign in with a token instead of a session.",
        ),
        status=403,
    )
