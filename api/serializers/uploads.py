"""Direct uploads: start, parts, completion."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import FileType
from .files import FileSerializer


class DirectUploadStartSerializer(serializers.Serializer[Any]):
    """Ask for a signed URL to upload a file straight to the workspace's bucket."""

    workspace = serializers.UUIDField()
    name = serializers.CharField(max_length=255, trim_whitespace=False)
    size = serializers.IntegerField(min_value=1, help_text="Exact size in bytes.")
    sha256 = serializers.CharField(
        required=False, allow_blank=True, help_text="Hex sha256 of the file (checked)."
    )
    md5 = serializers.CharField(
        required=False, allow_blank=True, help_text="Hex md5 of the file (checked)."
    )
    crc32c = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Hex crc32c of the file (checked where the bucket reports one: GCS).",
    )
    file_type = serializers.ChoiceField(choices=FileType.choices, required=False)


class UploadPartSerializer(serializers.Serializer[Any]):
    part_number = serializers.IntegerField(min_value=1, max_value=10000)
    etag = serializers.CharField(max_length=200)


class UploadPartsRequestSerializer(serializers.Serializer[Any]):
    part_numbers = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=10000),
        min_length=1,
        max_length=10000,
        help_text="The parts to sign again (1-based).",
    )


class UploadPartsSerializer(serializers.Serializer[Any]):
    parts = serializers.ListField(child=serializers.DictField())
    expires_at = serializers.DateTimeField()


class DirectUploadCompleteSerializer(serializers.Serializer[Any]):
    parts = UploadPartSerializer(
        many=True, required=False, help_text="For multipart uploads: every part's ETag."
    )


class DirectUploadSerializer(serializers.Serializer[Any]):
    """The pending File and how to upload its bytes."""

    file = FileSerializer()
    upload = serializers.DictField(
        help_text="method, url, headers (send them all), kind (presigned_put, "
        "presigned_multipart with parts[{part_number,url,size}] and upload_id, signed_url, "
        "resumable_session) and expires_at."
    )
