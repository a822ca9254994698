"""Request and response shapes. Validation of shape lives here; rules live in services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import ApiToken, File, FileType, Membership, Role, User, Workspace
from .selectors import role_in


class StaffOnlyFieldsMixin:
    """Fields only staff see (blank for everyone else): where objects are stored, where code
    came from and how it was built are the site's business, and a URI shown is a URI leaked."""

    staff_only_fields: tuple[str, ...] = ()
    context: dict[str, Any]

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        request = self.context.get("request")
        if request is None or not getattr(request.user, "is_staff", False):
            for name in self.staff_only_fields:
                if name in data:
                    data[name] = ""
        return data


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "date_joined"]
        read_only_fields = ["id", "email", "is_staff", "date_joined"]


class RegisterSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    full_name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class PasswordChangeSerializer(serializers.Serializer[Any]):
    old_password = serializers.CharField(style={"input_type": "password"})
    new_password = serializers.CharField(style={"input_type": "password"})


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The token. Shown only in this response.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class WorkspaceSerializer(serializers.ModelSerializer[Workspace]):
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


class FileSerializer(StaffOnlyFieldsMixin, serializers.ModelSerializer[File]):
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
        from django.urls import reverse

        path = reverse("file-download", kwargs={"pk": obj.pk})
        request = self.context.get("request")
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


class FileImportSerializer(serializers.Serializer[Any]):
    """Register an object already in a bucket as a file (it stays where it is)."""

    workspace = serializers.UUIDField()
    uri = serializers.CharField(max_length=2048, help_text="s3://bucket/key or gs://bucket/key")
    name = serializers.CharField(max_length=255, required=False, trim_whitespace=False)
    file_type = serializers.ChoiceField(choices=FileType.choices, required=False)
