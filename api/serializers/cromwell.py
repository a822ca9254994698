"""Registered Cromwell servers as the API shows them (their login stays in a credential)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from operations.models import CromwellServer

from ..models import Credential, CredentialKind


class CromwellServerSerializer(serializers.ModelSerializer[CromwellServer]):
    credential = serializers.PrimaryKeyRelatedField(
        queryset=Credential.objects.filter(kind=CredentialKind.CROMWELL),
        required=False,
        allow_null=True,
        help_text="A cromwell credential (username/password or token), or null.",
    )
    executor = serializers.CharField(
        source="executor_alias",
        read_only=True,
        help_text="Give this as a job's executor to run it here.",
    )
    active_jobs = serializers.SerializerMethodField()

    class Meta:
        model = CromwellServer
        fields = [
            "id",
            "name",
            "url",
            "credential",
            "options",
            "state",
            "executor",
            "active_jobs",
            "checked_at",
            "healthy",
            "version",
            "health_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "checked_at",
            "healthy",
            "version",
            "health_message",
            "created_at",
            "updated_at",
        ]

    def get_active_jobs(self, obj: CromwellServer) -> int:
        from operations.cromwell_servers import active_jobs

        counted = getattr(obj, "active_job_count", None)
        if counted is not None:  # read with the list (operations.selectors)
            return int(counted)

        return active_jobs(obj)

    def validate_options(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value
