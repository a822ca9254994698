"""Ferry's own Prometheus metrics, computed at scrape time from the database (see
operations.monitoring for why the worker's observations live there)."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from . import monitoring
from .models import ExecutorHealth
from .states import JobStatus


class FerryCollector:
    """Jobs by status and executor, the queue, the worker, the executors' polls and errors,
    and the results relocated into storage."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        jobs = GaugeMetricFamily(
            "ferry_jobs", "Jobs by status and executor.", labels=["status", "executor"]
        )
        seen = set()
        for status, executor, count in monitoring.job_counts():
            jobs.add_metric([status, executor], count)
            seen.add(status)
        for status in JobStatus:  # every status appears, at 0 when no job has it
            if status.value not in seen:
                jobs.add_metric([status.value, ""], 0)
        yield jobs

        depth, oldest = monitoring.queue_depth()
        yield GaugeMetricFamily("ferry_queue_depth", "Jobs waiting in QUEUED.", value=depth)
        yield GaugeMetricFamily(
            "ferry_queue_oldest_age_seconds",
            "Age of the oldest QUEUED job (0 when none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

        newest = monitoring.newest_heartbeat()
        yield GaugeMetricFamily(
            "ferry_worker_heartbeat_age_seconds",
            "Seconds since the newest worker heartbeat (-1 when no worker ever reported).",
            value=(now - newest).total_seconds() if newest else -1.0,
        )

        polls = SummaryMetricFamily(
            "ferry_poll_seconds", "Duration of one executor's poll.", labels=["executor"]
        )
        last = GaugeMetricFamily(
            "ferry_poll_last_seconds", "Duration of the latest poll.", labels=["executor"]
        )
        errors = CounterMetricFamily(
            "ferry_executor_errors", "Polls that failed, by executor.", labels=["executor"]
        )
        up = GaugeMetricFamily(
            "ferry_executor_up", "1 when the latest poll answered, else 0.", labels=["executor"]
        )
        for health in ExecutorHealth.objects.order_by("alias"):
            polls.add_metric([health.alias], int(health.polls_total), health.poll_seconds_total)
            last.add_metric([health.alias], health.last_poll_seconds)
            errors.add_metric([health.alias], health.errors_total)
            up.add_metric([health.alias], 1.0 if health.healthy else 0.0)
        yield from (polls, last, errors, up)

        totals = monitoring.worker_totals()
        yield CounterMetricFamily(
            "ferry_relocation_bytes",
            "Bytes of job results stored into their destination.",
            value=totals.get(monitoring.RELOCATION_BYTES, 0.0),
        )
        relocations = SummaryMetricFamily(
            "ferry_relocation_seconds", "Time to store one job's results."
        )
        relocations.add_metric(
            [],
            int(totals.get(monitoring.RELOCATIONS, 0)),
            totals.get(monitoring.RELOCATION_SECONDS, 0.0),
        )
        yield relocations
