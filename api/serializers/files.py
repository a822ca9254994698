"""Files: what the API shows of a file and what it accepts to upload, register, update or import one."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..filetypes import RESOURCE_TYPES
from ..models import File, FileType
from ..selectors import workspaces_writable_by
from .common import FORM_CHOICES_LIMIT, StaffOnlyFieldsMixin
from .reading import FastReadMixin


class FileSerializer(StaffOnlyFieldsMixin, FastReadMixin, serializers.ModelSerializer[File]):
    staff_only_fields = ("storage_uri",)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    download_url = serializers.SerializerMethodField()
    upload_expires_at = serializers.DateTimeField(
        source="pending_expires_at",
        read_only=True,
        allow_null=True,
        help_text="A pending direct upload must be completed before this time.",
    )

    class Meta:
        model = File
        fields = [
            "id",
            "name",
            "workspace",
            "owner",
            "size",
            "sha256",
            "md5",
            "crc32c",
            "content_type",
            "file_type",
            "resource_type",
            "status",
            "invalid_reason",
            "storage_uri",
            "managed",
            "upload_expires_at",
            "created_at",
            "updated_at",
            "download_url",
        ]
        read_only_fields = fields
        extra_kwargs = {"storage_uri": {"help_text": "Where the bytes are stored (staff only)."}}

    def get_download_url(self, obj: File) -> str:
        # The URL of one file with the id in its place: built (reversed and made absolute)
        # once per serializer, not once per row of a list.
        template = self._download_url_template
        if template is None:
            template = self._download_url_template = _download_url(self.context, _PLACEHOLDER)
        return template.replace(_PLACEHOLDER, str(obj.pk))

    _download_url_template: str | None = None


_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def _download_url(context: dict[str, Any], pk: str) -> str:
    from django.urls import reverse

    path = reverse("file-download", kwargs={"pk": pk})
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class FileUploadSerializer(serializers.Serializer[Any]):
    """Multipart upload: the file part plus where it goes."""

    workspace = serializers.UUIDField()
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    name = serializers.CharField(
        required=False,
        allow_blank=False,
        trim_whitespace=False,
        help_text="Defaults to the uploaded file's name.",
    )
    file_type = serializers.ChoiceField(
        choices=FileType.choices,
        required=False,
        help_text="Defaults to a guess from the name's extension.",
    )
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        help_text="If given, the upload is refused unless the bytes match.",
    )


class RawUploadQuerySerializer(serializers.Serializer[Any]):
    """Query parameters of the streamed raw-body upload (``PUT /api/files/upload/``)."""

    workspace = serializers.UUIDField()
    name = serializers.CharField(trim_whitespace=False)
    file_type = serializers.ChoiceField(choices=FileType.choices, required=False)


class FileUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, trim_whitespace=False)
    workspace = serializers.UUIDField(required=False, help_text="Move the file to this workspace.")
    resource_type = serializers.ChoiceField(
        choices=["", *RESOURCE_TYPES],
        required=False,
        help_text="WebMEV's resource type of the file (MTX, I_MTX, EXP_MTX…; empty: none), "
        "which WebMEV operations check their inputs against.",
    )


class FileImportSerializer(serializers.Serializer[Any]):
    """Register an object already in a bucket as a file (it stays where it is)."""

    workspace = serializers.UUIDField()
    uri = serializers.CharField(max_length=2048, help_text="s3://bucket/key or gs://bucket/key")
    name = serializers.CharField(max_length=255, required=False, trim_whitespace=False)
    file_type = serializers.ChoiceField(choices=FileType.choices, required=False)


class FileUploadFormSerializer(FileUploadSerializer):
    """The browsable API's upload form: a file picker and the workspaces you may write to.

    Only renders the form; ``FileUploadSerializer`` checks what is posted."""

    workspace = serializers.ChoiceField(choices=[])  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        choices: list[tuple[str, str]] = []
        if user is not None and user.is_authenticated:
            choices = [
                (str(pk), name)
                for pk, name in workspaces_writable_by(user)
                .order_by("name")
                .values_list("pk", "name")[:FORM_CHOICES_LIMIT]
            ]
        self.fields["workspace"] = serializers.ChoiceField(
            choices=choices, help_text="A workspace where you are an editor or owner."
        )
