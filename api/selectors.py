"""Reads: what a user may see, and with which role."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db.models import F, FilteredRelation, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from .exceptions import Forbidden, field_error
from .models import (
    WRITE_ROLES,
    ApiToken,
    Credential,
    File,
    FileStatus,
    Membership,
    Role,
    User,
    Workspace,
)


def columns_unlisted(model: Any, relation: str, shown: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of ``model`` joined as ``relation`` other than ``shown`` (and its key), for
    ``defer``: a list row built without the columns it never shows is built faster."""
    kept = {"id", *shown}
    return tuple(
        f"{relation}__{field.name}"
        for field in model._meta.concrete_fields
        if field.name not in kept
    )


def user_columns_unlisted(relation: str) -> tuple[str, ...]:
    """The columns of the user joined as ``relation`` that a list row never shows (all but
    the id and the email)."""
    return columns_unlisted(User, relation, ("email",))


def workspaces_visible_to(user: Any) -> QuerySet[Workspace]:
    if user.is_staff:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user)


def workspaces_writable_by(user: Any) -> QuerySet[Workspace]:
    """The workspaces ``user`` may add files and jobs to (editor, owner; staff: all)."""
    if user.is_staff:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user, memberships__role__in=WRITE_ROLES)


def _with_my_role(user: Any) -> QuerySet[Workspace]:
    """The workspaces ``user`` sees, each with the user's ``my_role`` from the membership the
    visibility filter joins (staff see every workspace: theirs joined on the side). A join,
    not a correlated subquery: compiling one of those cost more than running the query."""
    if user.is_staff:
        mine = FilteredRelation("memberships", condition=Q(memberships__user=user.pk))
        return Workspace.objects.annotate(mine=mine).annotate(my_role=F("mine__role"))
    return workspaces_visible_to(user).annotate(my_role=F("memberships__role"))


def workspaces_listed_for(user: Any) -> QuerySet[Workspace]:
    """The workspaces ``user`` sees, each with its ``file_count`` and the user's ``my_role``
    (read for the rows of a page only, not every workspace). The count is the one the database
    keeps (``WorkspaceFileCount``), never a count of the files. Both are joined, not
    correlated subqueries (compiling those was a third of a workspaces list request): the
    count's row (one per workspace, or none: 0), and the user's membership, the one the
    visibility filter joins already (staff see every workspace: theirs joined on the side)."""
    listed = _with_my_role(user)
    return listed.annotate(file_count=Coalesce(F("file_count_row__files"), 0))


def members_of(workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace).select_related("user")


def files_visible_to(user: Any) -> QuerySet[File]:
    """Files a user may see: never a job's results before the job succeeded (they are stored
    pending, with ``produced_by`` set, and published with the success)."""
    files = File.objects.select_related("owner").exclude(
        status=FileStatus.PENDING, produced_by__isnull=False
    )
    if user.is_staff:
        return files
    return files.filter(workspace__memberships__user=user)


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def object_of_unreadable_workspace(user: Any, uri: str) -> bool:
    """True when a stored object belongs to a workspace ``user`` can't read: it lies under
    that workspace's own prefix (``…/workspaces/<id>/``), a managed file of it (an upload or a
    result Ferry wrote) stands for it, or its path names one of its jobs or files (an engine's
    folders: Cromwell's ``<workflow>/<job id>/…``, staged inputs ``<job id>/<file id>/…``).
    Staff read everything."""
    from .storage.locations import workspace_ids_in

    if user.is_staff:
        return False
    readable = workspaces_visible_to(user)
    key = uri.partition("://")[2].partition("/")[2]
    named = workspace_ids_in(key)
    if named - set(readable.filter(pk__in=named).values_list("pk", flat=True)):
        return True
    ids = {uuid.UUID(found) for found in _UUID.findall(key)}
    if ids and (
        # A job of an unreadable workspace (``jobs`` is the reverse of Job.workspace).
        Workspace.objects.filter(jobs__pk__in=ids).exclude(pk__in=readable).exists()
        or File.objects.filter(pk__in=ids).exclude(workspace__in=readable).exists()
    ):
        return True
    return (
        File.objects.filter(storage_uri=uri, managed=True).exclude(workspace__in=readable).exists()
    )


def role_in(user: Any, workspace: Workspace) -> Role | None:
    """The user's role in the workspace; staff act as owners everywhere."""
    if user.is_staff:
        return Role.OWNER
    cached = getattr(workspace, "_role_cache", {})
    if user.pk in cached:
        return cached[user.pk]
    role = (
        Membership.objects.filter(workspace=workspace, user=user)
        .values_list("role", flat=True)
        .first()
    )
    result = Role(role) if role else None
    cached[user.pk] = result
    workspace._role_cache = cached  # type: ignore[attr-defined]
    return result


def may_write(user: Any, workspace: Workspace) -> bool:
    """Whether ``user`` may add to or change ``workspace`` (its files, its jobs): editors and
    owners (and staff, who act as owners). The one place this is decided."""
    return role_in(user, workspace) in WRITE_ROLES


def require_write(
    user: Any, workspace: Workspace, *, field: str = "workspace", doing: str = "add or change files"
) -> None:
    """Refuse ``user`` writing to ``workspace``: an unknown workspace to non-members (4xx
    naming ``field``), Forbidden to viewers (``doing`` says what they can't do)."""
    if may_write(user, workspace):
        return
    if role_in(user, workspace) is None:
        raise field_error(field, "No such workspace.", code="does_not_exist")
    raise Forbidden(
        f"Viewers cannot {doing} in this workspace.",
        details={field: ["Your role in this workspace is viewer."]},
    )


def writable_workspace(
    user: Any, workspace_id: Any, *, field: str = "workspace", doing: str = "add or change files"
) -> Workspace:
    """The workspace ``workspace_id`` if ``user`` may write to it; a workspace they can't see
    answers like an unknown one (4xx naming ``field``), a viewer's is Forbidden. One query:
    the user's role comes with the workspace (kept for :func:`role_in`)."""
    workspace = _with_my_role(user).filter(pk=workspace_id).first()
    if workspace is None:
        raise field_error(
            field, f"No workspace {workspace_id} that you can see.", code="does_not_exist"
        )
    role = getattr(workspace, "my_role", None)  # (annotated by _with_my_role)
    workspace._role_cache = {user.pk: Role(role) if role else None}  # type: ignore[attr-defined]
    require_write(user, workspace, field=field, doing=doing)
    return workspace


def api_tokens_of(user: Any) -> QuerySet[ApiToken]:
    """All the user's personal API tokens, revoked and expired ones too (for their list)."""
    return ApiToken.objects.filter(user=user)


def usable_api_tokens(user: Any) -> QuerySet[ApiToken]:
    """The user's personal API tokens that are neither revoked nor expired."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def credentials_listed() -> QuerySet[Credential]:
    """Every stored credential (staff manage them; their secrets are never read out)."""
    return Credential.objects.all()
