"""Reads of operations and jobs: which a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Concat

from api.models import File
from api.selectors import columns_unlisted, user_columns_unlisted, workspaces_visible_to

from .models import CROMWELL_ALIAS_PREFIX, CromwellServer, Job, Operation

# What a jobs list never shows: the executor's run spec, log tails and last observation of each
# job, the operation's full spec, sources and build log (a page of 500 jobs read megabytes of
# them), and of the operation, the workspace and the owner anything but what a row names.
JOB_LIST_DEFERRED = (
    "run_spec",
    "stdout_tail",
    "stderr_tail",
    "external_id",
    "observed_state",
    "observed_at",
    *columns_unlisted(Operation, "operation", ("name", "version")),
    *user_columns_unlisted("owner"),
)


# The attribute where ``jobs_visible_to`` puts each job's output files.
LISTED_OUTPUT_FILES = "listed_output_files"


def operations_visible_to(user: Any) -> QuerySet[Operation]:
    """The catalog ``user`` sees: retired (hidden) operations only for staff. The one place
    this is decided; anonymous or schema-generation users see what members see."""
    operations = Operation.objects.all()
    if not getattr(user, "is_staff", False):
        operations = operations.filter(hidden=False)
    return operations


def jobs_visible_to(user: Any, *, for_list: bool = False) -> QuerySet[Job]:
    """Jobs of the workspaces ``user`` sees, with what their serializer reads in a fixed number
    of queries: operation and owner joined, output files (and their owners) prefetched into
    ``listed_output_files`` (a plain list: prefetching into the related manager's cache builds
    a queryset for every job, which cost more than the rest of a list row)."""
    jobs = (
        Job.objects.filter(workspace__in=workspaces_visible_to(user))
        # (the workspace of one job, for its permission check; a list shows only its id)
        .select_related("operation", "owner", *(() if for_list else ("workspace",)))
        .prefetch_related(
            Prefetch(
                "output_files",
                queryset=File.objects.select_related("owner").defer(
                    *user_columns_unlisted("owner")
                ),
                to_attr=LISTED_OUTPUT_FILES,
            )
        )
    )
    return jobs.defer(*JOB_LIST_DEFERRED) if for_list else jobs


def cromwell_servers_listed() -> QuerySet[CromwellServer]:
    """Every registered Cromwell server with its credential (staff manage them) and
    ``active_job_count``, the jobs still running there (read with the page, not a query per
    server; the same jobs as ``cromwell_servers.active_jobs``)."""
    active = (
        Job.objects.active()
        .filter(executor=Concat(Value(CROMWELL_ALIAS_PREFIX), OuterRef("name")))
        .order_by()
        .values("executor")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return CromwellServer.objects.select_related("credential").annotate(
        active_job_count=Coalesce(Subquery(active, output_field=IntegerField()), 0)
    )
