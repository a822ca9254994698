"""What /readyz checks and /metrics exposes beyond the web process itself. Other apps register
here when they start (operations: the worker, the executors, the job queue), so the probes need
not import them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Each returns {check name: "ok" or what is wrong}.
READINESS_CHECKS: list[Callable[[], dict[str, str]]] = []
# Each returns {name: "ok" or what is wrong} for what /readyz reports without failing on it:
# remote engines (a Cromwell server an admin registered) whose outage only holds up their own
# jobs; taking every web process out of rotation for it would stop the whole API.
READINESS_REPORTS: list[Callable[[], dict[str, str]]] = []
# prometheus_client collectors (objects with collect()), asked at each scrape.
METRICS_COLLECTORS: list[Any] = []


def register_readiness_check(check: Callable[[], dict[str, str]]) -> None:
    if check not in READINESS_CHECKS:
        READINESS_CHECKS.append(check)


def register_readiness_report(report: Callable[[], dict[str, str]]) -> None:
    if report not in READINESS_REPORTS:
        READINESS_REPORTS.append(report)


def register_metrics_collector(collector: Any) -> None:
    if all(type(c) is not type(collector) for c in METRICS_COLLECTORS):
        METRICS_COLLECTORS.append(collector)
