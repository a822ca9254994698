"""What the HTTP modules share: the signed-in user, the id pattern of routes, writable workspaces."""

from __future__ import annotations

from typing import Any, cast

from rest_framework.request import Request

from ..exceptions import field_error
from ..models import User, Workspace
from ..selectors import workspaces_visible_to


def current_user(request: Request) -> User:
    """The signed-in user (every view that calls this requires authentication)."""
    return cast(User, request.user)


UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# ---------------------------------------------------------------------------------- auth, users


def writable_workspace(
    request: Request, workspace_id: Any, *, field: str = "workspace"
) -> Workspace:
    workspace = workspaces_visible_to(current_user(request)).filter(pk=workspace_id).first()
    if workspace is None:
        raise field_error(
            field, f"No workspace {workspace_id} that you can see.", code="does_not_exist"
        )
    return workspace
