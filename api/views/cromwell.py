"""Cromwell servers over HTTP: staff only. Add, update, drain (state=draining), remove (refused
while jobs run there), and check health."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from operations import cromwell_servers
from operations.models import CromwellServer
from operations.selectors import cromwell_servers_listed

from ..serializers.cromwell import CromwellServerSerializer
from .common import UUID_REGEX
from .conditional import ConditionalRequestsMixin


class CromwellServerViewSet(ConditionalRequestsMixin, viewsets.ModelViewSet[CromwellServer]):
    """Cromwell servers WDL jobs can run on (executor ``cromwell:<name>``)."""

    serializer_class = CromwellServerSerializer
    permission_classes = [IsAdminUser]
    lookup_value_regex = UUID_REGEX
    filterset_fields = ["state"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[CromwellServer]:
        return cromwell_servers_listed()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CromwellServerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        server = cromwell_servers.server_create(
            name=values["name"],
            url=values["url"],
            credential=values.get("credential"),
            options=values.get("options") or {},
        )
        if values.get("state") and values["state"] != server.state:
            server = cromwell_servers.server_update(server=server, state=values["state"])
        return Response(CromwellServerSerializer(server).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        server = self.get_object()
        data = CromwellServerSerializer(server, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        server = cromwell_servers.server_update(server=server, **data.validated_data)
        return Response(CromwellServerSerializer(server).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return self.http_method_not_allowed(request)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: CromwellServer) -> None:
        cromwell_servers.server_delete(server=instance)

    @extend_schema(request=None, responses={200: CromwellServerSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str | None = None) -> Response:
        """Ask the server for its status and version now, and record the outcome."""
        server = cromwell_servers.server_check(self.get_object())
        return Response(CromwellServerSerializer(server).data)
