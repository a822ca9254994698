"""The operations catalog over HTTP: anyone signed in reads it, staff write it."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from operations.models import Operation
from operations.selectors import operations_visible_to
from operations.services import operation_update

from ..serializers.operations import (
    OperationAddSerializer,
    OperationDetailSerializer,
    OperationSerializer,
    OperationUpdateSerializer,
)
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class StaffWrites(BasePermission):
    message = "Only staff can add or change operations."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_staff)


class OperationFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Operation
        fields = ["name", "mode", "hidden"]


class OperationViewSet(
    ConditionalRequestsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Operation],
):
    """The catalog. Everyone signed in reads it (retired operations: staff only); staff add
    operations from a folder or git repository and retire them."""

    permission_classes = [IsAuthenticated, StaffWrites]
    lookup_value_regex = UUID_REGEX
    filterset_class = OperationFilter
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Operation]:
        if getattr(self, "swagger_fake_view", False):
            return operations_visible_to(None)
        return operations_visible_to(current_user(self.request))

    def get_serializer_class(self) -> Any:
        return OperationDetailSerializer if self.action == "retrieve" else OperationSerializer

    @extend_schema(
        request=OperationAddSerializer,
        responses={201: OperationDetailSerializer, 200: OperationDetailSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from operations.ingestion import ingest_operation

        data = OperationAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation, created = ingest_operation(
            data.validated_data["source"],
            commit=data.validated_data.get("commit"),
            added_by=current_user(request),
        )
        return Response(
            OperationDetailSerializer(operation, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=OperationUpdateSerializer, responses={200: OperationDetailSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        operation = self.get_object()
        data = OperationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = operation_update(operation=operation, hidden=data.validated_data["hidden"])
        return Response(OperationDetailSerializer(operation, context={"request": request}).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return self.http_method_not_allowed(request)
        return super().update(request, *args, **kwargs)
