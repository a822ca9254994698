"""HTTP layer: parse and check input with serializers, call a service, render the result."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import update_session_auth_hash
from django.db import connection
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services, storage, transfers
from .downloads import file_download_response
from .exceptions import ApplicationError, field_error
from .filters import FileFilter, WorkspaceFilter
from .idempotency import IDEMPOTENCY_KEY_PARAMETER, answer_once, idempotent_create
from .models import ApiToken, File, FileStatus, Membership, User, Workspace
from .parsers import BoundedJSONParser, CompleteMultiPartParser, RawBodyParser
from .permissions import IsWorkspaceOwner, WorkspaceRolePermission
from .schema import ErrorSerializer
from .selectors import files_visible_to, usable_api_tokens, workspaces_visible_to
from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    DirectUploadCompleteSerializer,
    DirectUploadSerializer,
    DirectUploadStartSerializer,
    FileImportSerializer,
    FileSerializer,
    FileUpdateSerializer,
    FileUploadSerializer,
    MemberAddSerializer,
    MembershipSerializer,
    MemberUpdateSerializer,
    PasswordChangeSerializer,
    RawUploadQuerySerializer,
    RegisterSerializer,
    UploadPartsRequestSerializer,
    UploadPartsSerializer,
    UserSerializer,
    WorkspaceSerializer,
)
from .throttles import PASSWORD_CHANGE_THROTTLES, REGISTRATION_THROTTLES, ThrottledAuthView
from .uploads import SpooledUpload, spool_body


def current_user(request: Request) -> User:
    """The signed-in user (every view that calls this requires authentication)."""
    return cast(User, request.user)


UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# ---------------------------------------------------------------------------------- auth, users


class MeView(generics.RetrieveUpdateAPIView[Any]):
    """The signed-in user."""

    serializer_class = UserSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> Any:
        return current_user(self.request)


class PasswordChangeView(ThrottledAuthView):
    """Change your password. Every other session and every JWT issued before end; personal API
    tokens stay valid (they are separate credentials, revoked at /api/auth/api-tokens/)."""

    throttle_classes = PASSWORD_CHANGE_THROTTLES
    throttled_what = "password changes"

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={
            200: inline_serializer(
                "PasswordChanged",
                {"message": serializers.CharField(), "api_tokens_kept": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = current_user(request)
        services.user_change_password(user=user, **data.validated_data)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request, user)  # this session stays signed in
        kept = usable_api_tokens(user).count()
        return Response(
            {
                "message": (
                    "Password changed. Your other sessions and every access and refresh token "
                    "issued before now are revoked: sign in again with the new password. "
                    f"Your {kept} personal API token(s) remain valid; revoke any that may be "
                    "exposed at /api/auth/api-tokens/."
                ),
                "api_tokens_kept": kept,
            }
        )


class RegisterView(ThrottledAuthView):
    """Self-service sign-up; answers 403 unless FERRY_REGISTRATION_OPEN is on."""

    permission_classes = [AllowAny]
    throttle_classes = REGISTRATION_THROTTLES
    throttled_what = "registrations"

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: UserSerializer,
            403: OpenApiResponse(
                ErrorSerializer, description="Registration is closed (FERRY_REGISTRATION_OPEN)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiToken],
):
    """Personal API tokens of the signed-in user. DELETE revokes a token."""

    lookup_value_regex = UUID_REGEX
    serializer_class = ApiTokenSerializer
    filterset_fields: list[str] = []

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=current_user(self.request))

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ApiTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=current_user(request), **data.validated_data)
        body = ApiTokenCreatedSerializer(token).data
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(token=instance)


# ----------------------------------------------------------------------------------- workspaces


class WorkspaceViewSet(viewsets.ModelViewSet[Workspace]):
    """Workspaces you are a member of (staff: all)."""

    lookup_value_regex = UUID_REGEX
    serializer_class = WorkspaceSerializer
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    filterset_class = WorkspaceFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Workspace]:
        if getattr(self, "swagger_fake_view", False):
            return Workspace.objects.none()
        user = current_user(self.request)
        my_role = Membership.objects.filter(workspace=OuterRef("pk"), user=user.pk).values("role")[
            :1
        ]
        # Correlated subqueries: computed for the rows of the page only, not every workspace.
        file_count = (
            File.objects.filter(workspace=OuterRef("pk"))
            .order_by()
            .values("workspace")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return workspaces_visible_to(user).annotate(
            file_count=Coalesce(Subquery(file_count), 0), my_role=Subquery(my_role)
        )

    @extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent_create
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer[Workspace]) -> None:
        created = services.workspace_create(
            user=current_user(self.request), **serializer.validated_data
        )
        # Read back as lists show it (file_count, role).
        serializer.instance = self.get_queryset().get(pk=created.pk)

    def perform_update(self, serializer: serializers.BaseSerializer[Workspace]) -> None:
        assert serializer.instance is not None
        services.workspace_update(
            workspace=serializer.instance,
            user=current_user(self.request),
            **serializer.validated_data,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "delete_files", OpenApiTypes.BOOL, description="Also delete the workspace's files."
            )
        ]
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workspace = self.get_object()
        flag = request.query_params.get("delete_files", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise field_error("delete_files", "Must be true or false.")
        services.workspace_delete(workspace=workspace, delete_files=flag in ("true", "1"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceMemberViewSet(viewsets.ModelViewSet[Membership]):
    """Members of a workspace and their roles; the owner manages them by email."""

    lookup_value_regex = UUID_REGEX
    serializer_class = MembershipSerializer
    permission_classes = [IsAuthenticated, IsWorkspaceOwner]
    lookup_field = "user"
    lookup_url_kwarg = "user_id"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["created_at", "role"]
    filterset_fields = ["role"]

    def get_workspace(self) -> Workspace:
        if not hasattr(self, "_workspace"):
            self._workspace = get_object_or_404(
                workspaces_visible_to(current_user(self.request)), pk=self.kwargs["workspace_pk"]
            )
            self.check_object_permissions(self.request, self._workspace)
        return self._workspace

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(workspace=self.get_workspace()).select_related("user")

    def get_object(self) -> Membership:
        obj = get_object_or_404(self.get_queryset(), user_id=self.kwargs["user_id"])
        return obj

    @extend_schema(request=MemberAddSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workspace = self.get_workspace()
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_add(workspace=workspace, **data.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        data = MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_update(membership=membership, **data.validated_data)
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.member_remove(membership=instance)


# ---------------------------------------------------------------------------------------- files


def _writable_workspace(
    request: Request, workspace_id: Any, *, field: str = "workspace"
) -> Workspace:
    workspace = workspaces_visible_to(current_user(request)).filter(pk=workspace_id).first()
    if workspace is None:
        raise field_error(
            field, f"No workspace {workspace_id} that you can see.", code="does_not_exist"
        )
    return workspace


class FileViewSet(viewsets.ModelViewSet[File]):
    """Files in the workspaces you can see. Upload by multipart POST here, or stream a raw body
    with ``PUT /api/files/upload/?workspace=…&name=…``."""

    lookup_value_regex = UUID_REGEX
    serializer_class = FileSerializer
    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    filterset_class = FileFilter
    ordering_fields = ["name", "created_at", "size", "updated_at"]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    parser_classes = [BoundedJSONParser, CompleteMultiPartParser]

    def get_queryset(self) -> QuerySet[File]:
        if getattr(self, "swagger_fake_view", False):
            return File.objects.none()
        return files_visible_to(current_user(self.request))

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
            workspace = _writable_workspace(request, values["workspace"])
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
        },
    )
    @action(detail=False, methods=["put"], url_path="upload", parser_classes=[RawBodyParser])
    def upload(self, request: Request) -> Response:
        """Stream a raw body into a new file (never held in memory)."""
        query = RawUploadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        workspace = _writable_workspace(request, query.validated_data["workspace"])
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
        checksum = request.headers.get("X-Checksum-Sha256")
        if checksum is not None and not _is_sha256(checksum):
            raise field_error("X-Checksum-Sha256", "Must be 64 hexadecimal characters.")
        upload = spool_body(
            request._request,
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
            target = _writable_workspace(request, data.validated_data["workspace"])
        updated = services.file_update(
            user=current_user(request),
            file=file,
            name=data.validated_data.get("name"),
            workspace=target,
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
        workspace = _writable_workspace(request, values["workspace"])
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


class DirectUploadViewSet(viewsets.GenericViewSet[File]):
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
    )
    @idempotent_create
    def create(self, request: Request) -> Response:
        data = DirectUploadStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workspace = _writable_workspace(request, values["workspace"])
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


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


# ---------------------------------------------------------------------------------- operators


class HealthView(APIView):
    """The process is up (no dependencies checked)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        responses={200: inline_serializer("Health", {"status": serializers.CharField()})}
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadinessView(APIView):
    """The database and the file storage are reachable; 503 names what is not."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Readiness", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
            503: inline_serializer(
                "NotReady", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
        }
    )
    def get(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            storage.check_writable()
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )
