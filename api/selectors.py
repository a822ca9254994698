"""Reads: what a user may see, and with which role."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ApiToken, File, Membership, Role, Workspace


def workspaces_visible_to(user: Any) -> QuerySet[Workspace]:
    if user.is_staff:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user)


def files_visible_to(user: Any) -> QuerySet[File]:
    files = File.objects.select_related("owner")
    if user.is_staff:
        return files
    return files.filter(workspace__memberships__user=user)


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


def usable_api_tokens(user: Any) -> QuerySet[ApiToken]:
    """The user's personal API tokens that are neither revoked nor expired."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
