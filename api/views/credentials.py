"""Credentials over HTTP: staff only; secrets are write-only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from .. import credentials
from ..models import Credential
from ..selectors import credentials_listed
from ..serializers.credentials import CredentialSerializer
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class CredentialViewSet(ConditionalRequestsMixin, viewsets.ModelViewSet[Credential]):
    """Bucket and service credentials an admin registers once. Saving checks that Ferry can use
    them (`check_ok`, `check_message`); the secret is stored encrypted and never shown again."""

    serializer_class = CredentialSerializer
    permission_classes = [IsAdminUser]
    lookup_value_regex = UUID_REGEX
    filterset_fields = ["kind"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Credential]:
        return credentials_listed()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        credential = credentials.credential_create(
            user=current_user(request),
            name=values["name"],
            kind=values["kind"],
            config=values.get("config") or {},
            secret=values.get("secret") or {},
        )
        return Response(CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        credential = self.get_object()
        data = CredentialSerializer(credential, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "kind" in values and values["kind"] != credential.kind:
            from ..exceptions import field_error

            raise field_error("kind", "The kind of a credential can't change; create a new one.")
        credential = credentials.credential_update(
            credential=credential,
            name=values.get("name"),
            config=values.get("config"),
            secret=values.get("secret"),
        )
        return Response(CredentialSerializer(credential).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return self.http_method_not_allowed(request)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: Credential) -> None:
        credentials.credential_delete(credential=instance)

    @extend_schema(request=None, responses={200: CredentialSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str | None = None) -> Response:
        """Try the credential again now and record the outcome."""
        return Response(CredentialSerializer(credentials.credential_check(self.get_object())).data)
