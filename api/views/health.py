"""Liveness and readiness probes."""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .. import probes, storage
from ..exception_handlers import error_body
from ..schema import ErrorSerializer


class HealthView(APIView):
    """The process is up (no dependencies checked)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        responses={200: inline_serializer("Health", {"status": serializers.CharField()})}
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadinessView(APIView):
    """The database and the file storage are reachable, a worker is alive (its heartbeat is
    recent) and each Docker engine answers; 503 (in the error shape, the failing checks in
    ``details``) names what is not. Each Cromwell server is asked and reported, not counted."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Readiness",
                {
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(
                        child=serializers.CharField(), help_text='Each "ok".'
                    ),
                    "reports": serializers.DictField(
                        child=serializers.CharField(),
                        help_text='Each Cromwell server: "ok" or what is wrong (not counted: '
                        "its outage holds up only its own jobs).",
                    ),
                },
            ),
            503: ErrorSerializer,
        }
    )
    def get(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            storage.check_writable()
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = f"unreachable: {type(exc).__name__}"
        reports: dict[str, str] = {}
        if checks["database"] == "ok":  # the others read the database
            for check in probes.READINESS_CHECKS:
                checks.update(check())
            for report in probes.READINESS_REPORTS:
                reports.update(report())
        failing = {name: problem for name, problem in checks.items() if problem != "ok"}
        if not failing:
            return Response({"status": "ready", "checks": checks, "reports": reports})
        return Response(
            error_body(
                "not_ready",
                "Not ready: "
                + "; ".join(f"{name}: {problem}" for name, problem in failing.items()),
                {name: [problem] for name, problem in failing.items()},
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _may_scrape(request: HttpRequest) -> bool:
    """A client in FERRY_METRICS_NETWORKS (its address as the rate limits see it: behind a
    proxy, from X-Forwarded-For), or one that sends the FERRY_METRICS_TOKEN as a bearer."""
    token = settings.FERRY_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    client = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
    try:
        address = ipaddress.ip_address(str(client).strip())
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.FERRY_METRICS_NETWORKS
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: the web process's own (django-prometheus; every process's when
    PROMETHEUS_MULTIPROC_DIR is set) and Ferry's (jobs, queue, worker, executors), read from
    the database at scrape time. Not in the API schema: it is for Prometheus, not clients."""
    if request.method != "GET":
        return JsonResponse(
            error_body("method_not_allowed", f'Method "{request.method}" not allowed.'),
            status=405,
        )
    if not _may_scrape(request):
        return JsonResponse(
            error_body(
                "permission_denied",
                "Metrics are served to the networks in FERRY_METRICS_NETWORKS or with the "
                "FERRY_METRICS_TOKEN bearer token only.",
            ),
            status=403,
        )
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    ferry = CollectorRegistry(auto_describe=False)
    for collector in probes.METRICS_COLLECTORS:
        ferry.register(collector)
    return HttpResponse(body + generate_latest(ferry), content_type=CONTENT_TYPE_LATEST)
