"""Observation and feature sets of workspaces over HTTP (``/api/sets/``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ..element_sets import services
from ..element_sets.selectors import element_sets_visible_to
from ..exceptions import field_error
from ..filters import ElementSetFilter
from ..idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent_create
from ..models import ElementSet
from ..permissions import WorkspaceRolePermission
from ..selectors import writable_workspace
from ..serializers.element_sets import (
    ElementSetCombineSerializer,
    ElementSetCreateSerializer,
    ElementSetSerializer,
    ElementSetSummarySerializer,
    ElementSetUpdateSerializer,
)
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class ElementSetViewSet(ConditionalRequestsMixin, viewsets.ModelViewSet[ElementSet]):
    """Sets of observations (samples) or features (genes) kept in the workspaces you can see;
    members read them, editors and owners change them. A job input of a set type takes
    ``{"set": "<id>"}`` naming one of its workspace's sets. Lists leave the elements out
    (``element_count``); a set's own page has them."""

    lookup_value_regex = UUID_REGEX
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    filterset_class = ElementSetFilter
    ordering_fields = ["name", "created_at", "updated_at", "element_count"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[ElementSet]:
        if getattr(self, "swagger_fake_view", False):
            return ElementSet.objects.none()
        sets = element_sets_visible_to(current_user(self.request))
        return sets.defer("elements") if self.action == "list" else sets

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return ElementSetSummarySerializer if self.action == "list" else ElementSetSerializer

    @extend_schema(
        request=ElementSetCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: ElementSetSerializer},
    )
    @idempotent_create
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ElementSetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        created = services.element_set_create(
            user=current_user(request),
            workspace=writable_workspace(
                current_user(request), values["workspace"], doing="add or change sets"
            ),
            kind=values["kind"],
            name=values["name"],
            description=values.get("description", ""),
            elements=values["elements"],
        )
        return Response(ElementSetSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ElementSetUpdateSerializer, responses={200: ElementSetSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        element_set = self.get_object()
        data = ElementSetUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        updated = services.element_set_update(
            user=current_user(request), element_set=element_set, **data.validated_data
        )
        return Response(ElementSetSerializer(updated).data)

    @extend_schema(exclude=True)  # PUT answers 405 here: only PATCH changes a set
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return self.http_method_not_allowed(request)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: ElementSet) -> None:
        services.element_set_delete(user=current_user(self.request), element_set=instance)

    @extend_schema(request=ElementSetCombineSerializer, responses={201: ElementSetSerializer})
    @action(detail=True, methods=["post"], url_path="combine")
    def combine(self, request: Request, pk: str | None = None) -> Response:
        """A new set in this set's workspace: its union, intersection or difference with
        ``other`` (a set of the same kind you can read)."""
        left = self.get_object()
        data = ElementSetCombineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = current_user(request)
        right = element_sets_visible_to(user).filter(pk=values["other"]).first()
        if right is None:
            raise field_error(
                "other", f"No set {values['other']} that you can see.", code="does_not_exist"
            )
        created = services.element_set_combine(
            user=user,
            left=left,
            right=right,
            operation=values["operation"],
            name=values["name"],
            description=values.get("description", ""),
        )
        return Response(ElementSetSerializer(created).data, status=status.HTTP_201_CREATED)
