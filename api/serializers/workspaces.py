"""Workspaces and their members: what the API reads and accepts."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import Membership, Role, Workspace
from ..selectors import role_in
from .reading import FastReadMixin


class WorkspaceSerializer(FastReadMixin, serializers.ModelSerializer[Workspace]):
    role = serializers.SerializerMethodField(help_text="Your role here (staff act as owner).")
    file_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "description",
            "created_by",
            "created_at",
            "updated_at",
            "role",
            "file_count",
            "storage_location",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "storage_location": {
                "required": False,
                "help_text": "Bucket prefix for new files and job results (owners only; must lie "
                "in a registered location). Empty: the site's default.",
            }
        }

    def get_role(self, obj: Workspace) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        my_role = getattr(obj, "my_role", None)
        if my_role is not None:
            return str(my_role)
        role = role_in(request.user, obj)
        return role.value if role else None

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("A workspace name cannot be blank.")
        return value


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    user = serializers.UUIDField(source="user.id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "email", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MemberAddSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberUpdateSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)
