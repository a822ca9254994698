"""Permission classes. Object visibility (404 for non-members) is done by the querysets;
these decide what a member may do with their role."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import WRITE_ROLES, Role, Workspace
from .selectors import role_in


def _workspace_of(obj: Any) -> Workspace:
    return obj if isinstance(obj, Workspace) else obj.workspace


class WorkspaceRolePermission(BasePermission):
    """Members read; editors and owners write; only owners delete a workspace."""

    message = "Your role in this workspace does not allow this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        role = role_in(request.user, _workspace_of(obj))
        if role is None:
            return False
        return request.method in SAFE_METHODS or self.may_write(role, request, obj)

    def may_write(self, role: Role, request: Request, obj: Any) -> bool:
        if isinstance(obj, Workspace) and request.method == "DELETE":
            return role == Role.OWNER
        return role in WRITE_ROLES


class IsWorkspaceOwner(WorkspaceRolePermission):
    """Managing members: owners only (reads are open to every member)."""

    message = "Only an owner of this workspace can manage its members."

    def may_write(self, role: Role, request: Request, obj: Any) -> bool:
        return role == Role.OWNER
