"""Which element sets a user may read, and finding one as a job input names it."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from ..models import ElementSet, Workspace


def element_sets_visible_to(user: Any) -> QuerySet[ElementSet]:
    """Sets of the workspaces the user is a member of (staff: every set), as files."""
    sets = ElementSet.objects.select_related("created_by")
    if user.is_staff:
        return sets
    return sets.filter(workspace__memberships__user=user)


def element_set_in_workspace(user: Any, workspace: Workspace, set_id: Any) -> ElementSet | None:
    """The set ``set_id`` of ``workspace`` if the user may read it; ``None`` for a malformed id,
    a set of another workspace and one the user can't see alike."""
    try:
        pk = uuid.UUID(str(set_id))
    except ValueError:
        return None
    return element_sets_visible_to(user).filter(pk=pk, workspace=workspace).first()
