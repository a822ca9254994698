"""Credentials as the API shows them: never the secret, only whether one is stored."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Credential


class CredentialSerializer(serializers.ModelSerializer[Credential]):
    """Credentials as the API shows them: never the secret, only whether one is stored."""

    secret = serializers.DictField(
        child=serializers.CharField(),
        write_only=True,
        required=False,
        help_text="Write-only: e.g. {access_key_id, secret_access_key} for S3. Never returned.",
    )
    config = serializers.DictField(
        required=False,
        help_text="Not secret: e.g. {location: s3://bucket/prefix, endpoint_url, region} for "
        "S3, {location: gs://bucket/prefix, project} for GCS, {url} for Cromwell.",
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Credential
        fields = [
            "id",
            "name",
            "kind",
            "config",
            "secret",
            "has_secret",
            "created_at",
            "updated_at",
            "checked_at",
            "check_ok",
            "check_message",
        ]
        read_only_fields = [
            "id",
            "created_at",
            "updated_at",
            "checked_at",
            "check_ok",
            "check_message",
        ]

    def get_has_secret(self, obj: Credential) -> bool:
        return bool(obj.secret_ciphertext)
