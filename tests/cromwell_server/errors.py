"""Cromwell's error answers: ``{"status": "fail"|"error", "message", "errors"?}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer. 4xx are ``fail`` and 5xx ``error`` unless ``kind`` says otherwise."""

    def __init__(
        self,
        status_code: int,
        message: str,
        errors: list[str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.errors = errors
        self.kind = kind or ("fail" if status_code < 500 else "error")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.kind, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def unrecognized(workflow_id: str) -> ApiError:
    return ApiError(404, f"Unrecognized workflow ID: {workflow_id}")


def invalid_id(text: str) -> ApiError:
    return ApiError(400, f"Invalid workflow ID: '{text}'.")
