"""Direct uploads over HTTP: the browser or client sends bytes straight to a bucket."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ..idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent_create
from ..models import File, FileStatus
from ..permissions import WorkspaceRolePermission
from ..selectors import files_visible_to, writable_workspace
from ..serializers.files import FileSerializer
from ..serializers.uploads import (
    DirectUploadCompleteSerializer,
    DirectUploadSerializer,
    DirectUploadStartSerializer,
    UploadPartsRequestSerializer,
    UploadPartsSerializer,
)
from ..storage import transfers
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin

HELLO_SHA256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # of b"hello\n"


class DirectUploadViewSet(ConditionalRequestsMixin, viewsets.GenericViewSet[File]):
    """Uploads that go straight from the client to the workspace's bucket: ask here for signed
    URLs (a pending file is created), PUT the bytes to the bucket, then complete: Ferry checks
    the object's size and checksum before the file becomes ready. Uncompleted uploads expire."""

    lookup_value_regex = UUID_REGEX
    serializer_class = DirectUploadSerializer
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    pagination_class = None

    def get_queryset(self) -> QuerySet[File]:
        if getattr(self, "swagger_fake_view", False):
            return File.objects.none()
        return files_visible_to(current_user(self.request)).filter(status=FileStatus.PENDING)

    @extend_schema(
        request=DirectUploadStartSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: DirectUploadSerializer},
        examples=[
            OpenApiExample(
                "A six-byte text file",
                # The sha256 and size are those of the bytes "hello\n", so the upload
                # completes when those bytes are sent; put one of your workspaces' ids.
                value={
                    "workspace": "00000000-0000-0000-0000-000000000000",
                    "name": "hello.txt",
                    "size": 6,
                    "sha256": HELLO_SHA256,
                    "file_type": "text",
                },
                request_only=True,
            )
        ],
    )
    @idempotent_create
    def create(self, request: Request) -> Response:
        data = DirectUploadStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workspace = writable_workspace(current_user(request), values["workspace"])
        file, upload = transfers.file_upload_start(
            user=current_user(request),
            workspace=workspace,
            name=values["name"],
            size=values["size"],
            sha256=values.get("sha256"),
            md5=values.get("md5"),
            crc32c=values.get("crc32c"),
            file_type=values.get("file_type"),
            origin=request.headers.get("Origin"),
        )
        body = {"file": FileSerializer(file, context={"request": request}).data, "upload": upload}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=UploadPartsRequestSerializer, responses={200: UploadPartsSerializer})
    @action(detail=True, methods=["post"], url_path="parts")
    def parts(self, request: Request, pk: str | None = None) -> Response:
        """Sign parts of a multipart upload again (their URLs expire long before the upload)."""
        file = self.get_object()
        data = UploadPartsRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signed = transfers.file_upload_sign_parts(
            user=current_user(request), file=file, part_numbers=data.validated_data["part_numbers"]
        )
        return Response(signed)

    @extend_schema(
        request=DirectUploadCompleteSerializer, responses={200: FileSerializer, 202: FileSerializer}
    )
    @action(detail=True, methods=["post"], url_path="complete")
    def complete(self, request: Request, pk: str | None = None) -> Response:
        file = self.get_object()
        data = DirectUploadCompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        done = transfers.file_upload_complete(
            user=current_user(request), file=file, parts=data.validated_data.get("parts")
        )
        # 202: the object is being checked by a worker; the file becomes ready (or is removed).
        code = status.HTTP_202_ACCEPTED if done.status == FileStatus.PENDING else status.HTTP_200_OK
        return Response(FileSerializer(done, context={"request": request}).data, status=code)
