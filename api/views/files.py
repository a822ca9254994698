"""Files over HTTP: list, upload, register, copy, move, download."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..downloads import file_download_response
from ..exceptions import ApplicationError, field_error
from ..filters import FileFilter
from ..idempotency import IDEMPOTENCY_KEY_PARAMETER, answer_once, idempotent_create
from ..models import File, FileStatus
from ..parsers import BoundedJSONParser, CompleteMultiPartParser, RawBodyParser
from ..permissions import WorkspaceRolePermission
from ..renderers import BrowsableFormsMixin
from ..selectors import files_visible_to, user_columns_unlisted, writable_workspace
from ..serializers.files import (
    FileImportSerializer,
    FileSerializer,
    FileUpdateSerializer,
    FileUploadFormSerializer,
    FileUploadSerializer,
    RawUploadQuerySerializer,
)
from ..storage import transfers
from ..storage.uploads import SpooledUpload, spool_body
from ..streamed_body import body_of
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class FileViewSet(BrowsableFormsMixin, ConditionalRequestsMixin, viewsets.ModelViewSet[File]):
    """Files in the workspaces you can see. Upload by multipart POST here, or stream a raw body
    with ``PUT /api/files/upload/?workspace=…&name=…``."""

    lookup_value_regex = UUID_REGEX
    serializer_class = FileSerializer
    form_serializer_classes = {"create": FileUploadFormSerializer}
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    filterset_class = FileFilter
    ordering_fields = ["name", "created_at", "size", "updated_at"]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    parser_classes = [BoundedJSONParser, CompleteMultiPartParser]

    def get_queryset(self) -> QuerySet[File]:
        if getattr(self, "swagger_fake_view", False):
            return File.objects.none()
        files = files_visible_to(current_user(self.request))
        return files.defer(*user_columns_unlisted("owner")) if self.action == "list" else files

    @extend_schema(
        request={"multipart/form-data": FileUploadSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: FileSerializer},
    )
    @idempotent_create
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = FileUploadSerializer(data=request.data)
        try:
            data.is_valid(raise_exception=True)
            values = data.validated_data
            upload = values["file"]
            if not isinstance(upload, SpooledUpload):
                raise ApplicationError(
                    "Uploads must be received by Ferry's hashing upload handler."
                )
            workspace = writable_workspace(current_user(request), values["workspace"])
            created = services.file_create_from_upload(
                user=current_user(request),
                workspace=workspace,
                upload=upload,
                name=values.get("name") or upload.name or "",
                file_type=values.get("file_type"),
                expected_sha256=values.get("sha256"),
            )
        finally:
            for part in request.FILES.values():
                part.close()
        return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            RawUploadQuerySerializer,
            OpenApiParameter(
                "Content-Length", OpenApiTypes.INT, OpenApiParameter.HEADER, required=True
            ),
            OpenApiParameter(
                "X-Checksum-Sha256",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Hex sha256 of the body; the upload is refused if it differs.",
            ),
            IDEMPOTENCY_KEY_PARAMETER,
        ],
        responses={
            201: FileSerializer,
            411: OpenApiResponse(description="Content-Length is missing."),
            413: OpenApiResponse(description="Content-Length is over the upload size limit."),
        },
    )
    @action(detail=False, methods=["put"], url_path="upload", parser_classes=[RawBodyParser])
    def upload(self, request: Request) -> Response:
        """Stream a raw body into a new file (never held in memory)."""
        query = RawUploadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        workspace = writable_workspace(current_user(request), query.validated_data["workspace"])
        services.clean_file_name(query.validated_data["name"])
        length_header = request.META.get("CONTENT_LENGTH") or ""
        if not length_header.isdigit():
            message = (
                "Send the body with a Content-Length header (chunked uploads are not accepted)."
            )
            raise ApplicationError(
                message,
                code="length_required",
                status_code=411,
                details={"Content-Length": [message]},
            )
        services.refuse_oversized_upload(int(length_header))
        checksum = request.headers.get("X-Checksum-Sha256")
        if checksum is not None and not _is_sha256(checksum):
            raise field_error("X-Checksum-Sha256", "Must be 64 hexadecimal characters.")
        upload = spool_body(
            body_of(request._request),
            int(length_header),
            name=query.validated_data["name"],
            content_type=request.content_type,
        )

        def create() -> Response:
            created = services.file_create_from_upload(
                user=current_user(request),
                workspace=workspace,
                upload=upload,
                name=query.validated_data["name"],
                file_type=query.validated_data.get("file_type"),
                expected_sha256=checksum,
                checksum_field="X-Checksum-Sha256",
            )
            return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

        # A retry is told apart by the body's sha256 and size, computed while it was spooled.
        try:
            return answer_once(
                request,
                user=current_user(request),
                body={"body": upload, "content_type": request.content_type, "sha256": checksum},
                create=create,
            )
        finally:
            upload.close()

    @extend_schema(request=FileUpdateSerializer, responses={200: FileSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        file = self.get_object()
        data = FileUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = None
        if "workspace" in data.validated_data:
            target = writable_workspace(current_user(request), data.validated_data["workspace"])
        updated = services.file_update(
            user=current_user(request),
            file=file,
            name=data.validated_data.get("name"),
            workspace=target,
            resource_type=data.validated_data.get("resource_type"),
        )
        return Response(self.get_serializer(updated).data)

    @extend_schema(exclude=True)  # PUT answers 405 here: only PATCH changes a file
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return self.http_method_not_allowed(request)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: File) -> None:
        if instance.status == FileStatus.PENDING and instance.pending_upload is not None:
            transfers.upload_cancel(file=instance)
            return
        services.file_delete(file=instance)

    @extend_schema(request=FileImportSerializer, responses={201: FileSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_object(self, request: Request) -> Response:
        """Register an object already in a bucket as a file, after checking that you may use
        its location and that Ferry can read it. The object stays where it is."""
        data = FileImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workspace = writable_workspace(current_user(request), values["workspace"])
        created = transfers.file_import(
            user=current_user(request),
            workspace=workspace,
            uri=values["uri"],
            name=values.get("name"),
            file_type=values.get("file_type"),
        )
        return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            # Served with the file's own content type (text/tab-separated-values, …).
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The bytes, with the file's content type."
            ),
            (206, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="A byte range."),
            302: OpenApiResponse(
                description="With ?redirect=1 for a file in a bucket: a short-lived signed URL."
            ),
            304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
            416: OpenApiResponse(description="Range not satisfiable."),
        },
        parameters=[
            OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER),
            OpenApiParameter(
                "redirect",
                OpenApiTypes.BOOL,
                description="Answer 302 to a signed bucket URL instead of streaming (bucket "
                "files only; local files are streamed anyway).",
            ),
        ],
    )
    @action(detail=True, methods=["get"], url_path="download")
    def download(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The file's bytes, streamed; supports Range and If-None-Match."""
        file = self.get_object()
        flag = request.query_params.get("redirect", "0").lower()
        if flag not in ("1", "0", "true", "false"):
            raise field_error("redirect", "Must be 1 or 0.")
        if file.status == FileStatus.PENDING:
            raise ApplicationError(
                "The file's upload is not complete yet.", code="not_ready", status_code=409
            )
        if flag in ("1", "true"):
            url = transfers.signed_download_url(file)
            if url is not None:
                response = HttpResponseRedirect(url)
                response["Cache-Control"] = "no-store"
                return response
        return file_download_response(request, file)


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)
