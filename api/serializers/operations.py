"""The operations catalog: what the API shows of an operation and what staff send to add or update one."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from operations.models import Operation

from .common import StaffOnlyFieldsMixin
from .reading import FastReadMixin


class OperationSerializer(
    StaffOnlyFieldsMixin, FastReadMixin, serializers.ModelSerializer[Operation]
):
    staff_only_fields = ("source", "build_log")

    class Meta:
        model = Operation
        fields = [
            "id",
            "name",
            "version",
            "revision",
            "description",
            "mode",
            "spec",
            "image",
            "image_origin",
            "executors",
            "source",
            "created_at",
            "hidden",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "source": {"help_text": "Folder or repository it came from (staff only)."},
            "executors": {
                "help_text": "Where its jobs may run when not on every executor of its mode: "
                '["cromwell:*"] for a workflow only Cromwell accepts (spec.wdl.miniwdl_refuses '
                "says why). Empty: any."
            },
        }


class OperationDetailSerializer(OperationSerializer):
    class Meta(OperationSerializer.Meta):
        fields = [*OperationSerializer.Meta.fields, "build_log"]
        read_only_fields = fields
        extra_kwargs = {
            **OperationSerializer.Meta.extra_kwargs,
            "build_log": {"help_text": "The image build's log (staff only)."},
        }


class OperationAddSerializer(serializers.Serializer[Any]):
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=1000,
        help_text="A folder on the server, or a git repository URL (file:// works).",
    )
    commit = serializers.RegexField(
        r"^[0-9a-fA-F]{7,40}$",
        required=False,
        help_text="Exact commit to use (default: the repository's HEAD).",
    )


class OperationUpdateSerializer(serializers.Serializer[Any]):
    hidden = serializers.BooleanField(help_text="Retire (hide) or restore the operation.")
