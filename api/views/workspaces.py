"""Workspaces and their members over HTTP."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..exceptions import field_error
from ..filters import WorkspaceFilter
from ..idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent_create
from ..models import Membership, Workspace
from ..permissions import IsWorkspaceOwner, WorkspaceRolePermission
from ..selectors import members_of, workspaces_listed_for, workspaces_visible_to
from ..serializers.workspaces import (
    MemberAddSerializer,
    MembershipSerializer,
    MemberUpdateSerializer,
    WorkspaceSerializer,
)
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class WorkspaceViewSet(ConditionalRequestsMixin, viewsets.ModelViewSet[Workspace]):
    """Workspaces you are a member of (staff: all)."""

    lookup_value_regex = UUID_REGEX
    serializer_class = WorkspaceSerializer
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    filterset_class = WorkspaceFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Workspace]:
        if getattr(self, "swagger_fake_view", False):
            return Workspace.objects.none()
        return workspaces_listed_for(current_user(self.request))

    @extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent_create
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer[Workspace]) -> None:
        created = services.workspace_create(
            user=current_user(self.request), **serializer.validated_data
        )
        # Read back as lists show it (file_count, role).
        serializer.instance = self.get_queryset().get(pk=created.pk)

    def perform_update(self, serializer: serializers.BaseSerializer[Workspace]) -> None:
        assert serializer.instance is not None
        services.workspace_update(
            workspace=serializer.instance,
            user=current_user(self.request),
            **serializer.validated_data,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "delete_files", OpenApiTypes.BOOL, description="Also delete the workspace's files."
            )
        ]
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workspace = self.get_object()
        flag = request.query_params.get("delete_files", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise field_error("delete_files", "Must be true or false.")
        services.workspace_delete(workspace=workspace, delete_files=flag in ("true", "1"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceMemberViewSet(ConditionalRequestsMixin, viewsets.ModelViewSet[Membership]):
    """Members of a workspace and their roles; the owner manages them by email."""

    lookup_value_regex = UUID_REGEX
    serializer_class = MembershipSerializer
    permission_classes = [IsAuthenticated, IsWorkspaceOwner]
    lookup_field = "user"
    lookup_url_kwarg = "user_id"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["created_at", "role"]
    filterset_fields = ["role"]

    def get_workspace(self) -> Workspace:
        if not hasattr(self, "_workspace"):
            self._workspace = get_object_or_404(
                workspaces_visible_to(current_user(self.request)), pk=self.kwargs["workspace_pk"]
            )
            self.check_object_permissions(self.request, self._workspace)
        return self._workspace

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return members_of(self.get_workspace())

    def get_object(self) -> Membership:
        obj = get_object_or_404(self.get_queryset(), user_id=self.kwargs["user_id"])
        return obj

    @extend_schema(request=MemberAddSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workspace = self.get_workspace()
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_add(workspace=workspace, **data.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        data = MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_update(membership=membership, **data.validated_data)
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.member_remove(membership=instance)


# ---------------------------------------------------------------------------------------- files
