"""Binds what a request is about to the log context, so each line logged while serving it
(and Django's one line for a 4xx/5xx answer) carries it: the method and path, and the job id
for a job's routes (see config/logs.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from django.http import HttpRequest, HttpResponse

JOB_ROUTES = ("job-",)


class LogContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Cleared when a request starts, not when it ends: Django logs a 4xx/5xx answer after
        # the middleware has returned it, and that line should name the job too.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(method=request.method, path=request.path)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        match = request.resolver_match
        if match is not None and str(match.url_name).startswith(JOB_ROUTES) and "pk" in kwargs:
            structlog.contextvars.bind_contextvars(job_id=str(kwargs["pk"]))
