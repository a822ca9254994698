"""Jobs over HTTP."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from operations import monitoring
from operations import services as job_services
from operations.models import ExecutorHealth, Job
from operations.selectors import jobs_visible_to, operations_visible_to
from operations.states import JobStatus

from ..exceptions import field_error
from ..filters import visible_workspaces
from ..idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent_create
from ..models import File
from ..permissions import WorkspaceRolePermission
from ..renderers import BrowsableFormsMixin
from ..serializers.jobs import (
    ExecutorSerializer,
    JobCreateFormSerializer,
    JobCreateSerializer,
    JobLogsSerializer,
    JobSerializer,
)
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


class JobFilter(django_filters.FilterSet):
    # As for files: only workspaces you can see are choices, so someone else's workspace
    # answers like an unknown one (400), not with an empty list.
    workspace = django_filters.ModelChoiceFilter(queryset=visible_workspaces)
    status = django_filters.ChoiceFilter(choices=[(s.value, s.value) for s in JobStatus])

    class Meta:
        model = Job
        fields = ["workspace", "operation", "status"]


class JobViewSet(
    BrowsableFormsMixin,
    ConditionalRequestsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Job],
):
    """Jobs: an operation run on inputs from a workspace."""

    serializer_class = JobSerializer
    form_serializer_classes = {"create": JobCreateFormSerializer}
    permission_classes = [
        IsAuthenticated,
        WorkspaceRolePermission,
    ]  # members read; editors, owners cancel
    lookup_value_regex = UUID_REGEX
    filterset_class = JobFilter
    ordering_fields = ["created_at", "status", "finished_at"]

    def get_queryset(self) -> QuerySet[Job]:
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return jobs_visible_to(current_user(self.request), for_list=self.action == "list")

    @extend_schema(
        request=JobCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: JobSerializer},
    )
    @idempotent_create
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = current_user(request)
        operation = operations_visible_to(user).filter(pk=data.validated_data["operation"]).first()
        if operation is None:
            raise field_error(
                "operation",
                f"No operation {data.validated_data['operation']}.",
                code="does_not_exist",
            )
        job = job_services.job_create(
            user=user,
            operation=operation,
            workspace_id=data.validated_data["workspace"],
            inputs=data.validated_data["inputs"],
            executor=data.validated_data.get("executor") or None,
        )
        # A job just created has produced no file yet: its answer reads none (an evaluated
        # empty result, so not even an empty query is compiled).
        no_files = File.objects.none()
        no_files._result_cache = []
        job._prefetched_objects_cache = {"output_files": no_files}  # type: ignore[attr-defined]
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop the job for real (its container is removed)."""
        job = job_services.job_cancel(user=current_user(request), job=self.get_object())
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter("tail", OpenApiTypes.INT, description="Only the last N lines.")
        ],
        responses={200: JobLogsSerializer},
    )
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, pk: str | None = None) -> Response:
        """stdout and stderr: live while the job runs, the kept tail afterwards."""
        job = self.get_object()
        tail_param = request.query_params.get("tail")
        tail: int | None = None
        if tail_param is not None:
            if not tail_param.isdigit() or int(tail_param) == 0:
                raise field_error("tail", "Must be a positive whole number of lines.")
            tail = int(tail_param)
        return Response(job_services.job_logs(job=job, tail=tail))


class ExecutorListView(ConditionalRequestsMixin, generics.GenericAPIView[Any]):
    """Staff only: each executor (configured, registered Cromwell servers, and any that still
    has active jobs) with its latest poll's health, its active jobs and its latest error."""

    permission_classes = [IsAdminUser]
    serializer_class = ExecutorSerializer
    queryset = ExecutorHealth.objects.none()  # (for the schema: the list is built, not queried)
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(responses={200: ExecutorSerializer(many=True)})
    def get(self, request: Request) -> Response:
        overview = monitoring.executors_overview()
        return Response(ExecutorSerializer(overview, many=True).data)
