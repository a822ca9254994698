"""The domain's one error family: :class:`ApplicationError` and its subclasses.

Services, selectors and operations raise these; they know no HTTP framework. Each error carries
a status code (a plain int), a stable ``code`` and per-field ``details`` (a field, header or query
parameter mapped to its messages). :mod:`api.exception_handlers` maps every error to the one
response shape ``{"code", "message", "details"}``.
"""

from __future__ import annotations

from http import HTTPStatus

from django.conf import settings


class ApplicationError(Exception):
    """A business-rule error with an HTTP status, a stable code and per-field details."""

    status_code: int = HTTPStatus.BAD_REQUEST.value
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, list[str]] | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class Conflict(ApplicationError):
    status_code = HTTPStatus.CONFLICT.value
    code = "conflict"


class NotFound(ApplicationError):
    status_code = HTTPStatus.NOT_FOUND.value
    code = "not_found"


class Forbidden(ApplicationError):
    status_code = HTTPStatus.FORBIDDEN.value
    code = "permission_denied"


class PreconditionFailed(ApplicationError):
    """A conditional request's precondition (If-Match) names another version."""

    status_code = HTTPStatus.PRECONDITION_FAILED.value
    code = "precondition_failed"


def field_error(field: str, message: str, *, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, details={field: [message]}, code=code)


def body_too_large(limit: int | None = None) -> ApplicationError:
    """413 for a request body (JSON or form fields) over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    message = (
        f"The request body is larger than {limit} bytes; upload files with multipart "
        "or PUT /api/files/upload/."
    )
    return ApplicationError(
        message,
        code="too_large",
        status_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value,
        details={"body": [message]},
    )
