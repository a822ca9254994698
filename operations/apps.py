import logging
from typing import Any

from django.apps import AppConfig
from django.core import checks

_kicked = False


def _freeze_startup_heap(sender: Any, **kwargs: Any) -> None:
    """A worker process started: what it loaded lives as long as it (config.heap)."""
    from django_q.conf import Conf

    if not Conf.SYNC:  # inline tasks (tests) announce a "worker" per task
        from config.heap import freeze_startup_heap

        freeze_startup_heap()


def _reconcile_on_worker_start(sender: Any, **kwargs: Any) -> None:
    """A worker process started: recover what a killed worker left (its leases, its fetched
    tasks) and run the poll loop now, not at the next scheduled minute or when leases expire.
    The cluster's workers start together; a short lease lets one of them do it."""
    global _kicked
    from django_q.conf import Conf

    if _kicked or Conf.SYNC:  # inline tasks (tests) announce a "worker" per task: skip those
        return
    _kicked = True
    import threading
    from datetime import timedelta

    from . import leases, monitoring
    from .runner import recover, watch_poller

    try:
        if leases.acquire(
            f"recover:{leases.host_name()}", leases.new_holder(), for_=timedelta(seconds=5)
        ):
            recover()
    except Exception:  # e.g. the database is away: the poll watch and reconciler catch up
        logging.getLogger(__name__).exception("could not recover after a worker start")
    threading.Thread(
        target=watch_poller, args=(threading.Event(),), name="ferry poll watch", daemon=True
    ).start()
    threading.Thread(
        target=monitoring.heartbeat_loop,
        args=(threading.Event(),),
        name="ferry worker heartbeat",
        daemon=True,
    ).start()


# The worker tasks about one job (their first argument is its id), see operations.queue.
JOB_TASKS = {"submit_job", "finalize_job", "cancel_job"}


def _bind_job_of_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """Every line a worker logs while it runs a task of a job carries the job's id."""
    import structlog

    structlog.contextvars.clear_contextvars()
    name = getattr(func, "__name__", "")
    if name in JOB_TASKS and task.get("args"):
        structlog.contextvars.bind_contextvars(job_id=str(task["args"][0]), task=name)


def _unbind_job_of_task(sender: Any, **kwargs: Any) -> None:
    import structlog

    structlog.contextvars.clear_contextvars()


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Ferry: operations and jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

        from executors.checks import check_executors
        from executors.registry import register_resolver

        from .cromwell_servers import resolve_executor
        from .models import CROMWELL_ALIAS_PREFIX

        checks.register(check_executors)
        register_resolver(CROMWELL_ALIAS_PREFIX, resolve_executor)
        # Cromwell logins are checked against the server when an admin saves them.
        from api.credentials import CHECKERS, CREDENTIAL_USES
        from api.models import CredentialKind

        from .cromwell_servers import check_cromwell_credential, credential_use

        CHECKERS[CredentialKind.CROMWELL] = check_cromwell_credential
        # A credential a Cromwell server logs in with can't be deleted.
        if credential_use not in CREDENTIAL_USES:
            CREDENTIAL_USES.append(credential_use)
        # /readyz asks after the worker and the engines; /metrics shows the jobs and executors.
        from api.probes import (
            register_metrics_collector,
            register_readiness_check,
            register_readiness_report,
        )

        from .metrics import FerryCollector
        from .monitoring import check_cromwell_servers, readiness_checks

        register_readiness_check(readiness_checks)
        register_readiness_report(check_cromwell_servers)
        register_metrics_collector(FerryCollector())
        post_spawn.connect(_freeze_startup_heap, dispatch_uid="ferry-freeze-startup-heap")
        post_spawn.connect(_reconcile_on_worker_start, dispatch_uid="ferry-reconcile-on-start")
        pre_execute.connect(_bind_job_of_task, dispatch_uid="ferry-log-job-of-task")
        post_execute_in_worker.connect(_unbind_job_of_task, dispatch_uid="ferry-log-job-of-task")
