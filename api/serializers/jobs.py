"""Jobs: what the API shows of a job and what it accepts to create one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from operations.models import Job
from operations.monitoring import job_executor_state
from operations.selectors import LISTED_OUTPUT_FILES, operations_visible_to

from ..models import FileStatus
from ..selectors import workspaces_writable_by
from .common import FORM_CHOICES_LIMIT
from .files import FileSerializer
from .reading import FastReadMixin


class JobExecutorStateSerializer(serializers.Serializer[Any]):
    observed_state = serializers.CharField(
        help_text="What the executor last said of the run: pending, running, exited, missing "
        "(empty before the first poll)."
    )
    observed_at = serializers.DateTimeField(allow_null=True, help_text="Since when it says so.")
    last_polled_at = serializers.DateTimeField(
        allow_null=True, help_text="When the job's executor was last polled."
    )
    last_error = serializers.CharField(help_text="The executor's latest poll error.")
    last_error_at = serializers.DateTimeField(allow_null=True)
    queue_position = serializers.IntegerField(
        allow_null=True, help_text="1 for the oldest QUEUED job; null unless QUEUED."
    )


class ExecutorSerializer(serializers.Serializer[Any]):
    alias = serializers.CharField(help_text="As jobs name it in `executor`.")
    healthy = serializers.BooleanField(
        allow_null=True, help_text="Whether its latest poll answered (null: never polled)."
    )
    active_jobs = serializers.IntegerField()
    last_polled_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    last_error_at = serializers.DateTimeField(allow_null=True)


class JobSerializer(FastReadMixin, serializers.ModelSerializer[Job]):
    operation_name = serializers.CharField(source="operation.name", read_only=True, default=None)
    operation_version = serializers.CharField(
        source="operation.version", read_only=True, default=None
    )
    owner = serializers.EmailField(source="owner.email", read_only=True)
    error_detail = serializers.SerializerMethodField(help_text="Full failure detail (staff only).")
    executor_notice = serializers.SerializerMethodField(
        help_text="Set while the executor can't be reached; the job keeps its state meanwhile."
    )
    output_files = serializers.SerializerMethodField(help_text="Files this job produced.")
    executor_state = serializers.SerializerMethodField(
        help_text="Staff only, on a single job (null otherwise): what its executor last said."
    )
    outputs = serializers.JSONField(
        read_only=True,
        help_text="Output name -> value, with the structure the operation declares: a file's "
        'place holds its File id, e.g. {"grid": [["<id>", "<id>"], ["<id>"], []], '
        '"by_sample": {"s1": "<id>"}, "n": 3} (lists, maps keyed by string, '
        'pairs as {"left", "right"}, structs as objects; null for a missing optional value).',
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "operation",
            "operation_name",
            "operation_version",
            "workspace",
            "owner",
            "status",
            "inputs",
            "outputs",
            "output_files",
            "error_message",
            "error_detail",
            "executor_notice",
            "executor_state",
            "executor",
            "attempts",
            "created_at",
            "submitted_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(FileSerializer(many=True))
    def get_output_files(self, obj: Job) -> list[dict[str, Any]]:
        """Published results only: a finalize under way stores them unpublished (pending)
        until the job succeeds (read from what ``jobs_visible_to`` prefetched, if it did)."""
        prefetched = getattr(obj, LISTED_OUTPUT_FILES, None)
        rows = prefetched if prefetched is not None else obj.output_files.all()
        published = [f for f in rows if f.status != FileStatus.PENDING]
        # One FileSerializer for all the rows of a list (building one per job cost more than
        # the rest of the row).
        files = getattr(self, "_output_file_serializer", None)
        if files is None:
            files = self._output_file_serializer = FileSerializer(context=self.context)
        return [files.to_representation(f) for f in published]

    def get_executor_notice(self, obj: Job) -> str:
        """E.g. "The Docker engine is not answering (since 14:02 UTC); the job will continue
        when it is back." (the job keeps its state meanwhile)."""
        return obj.executor_notice()

    @extend_schema_field(JobExecutorStateSerializer(allow_null=True))
    def get_executor_state(self, obj: Job) -> dict[str, Any] | None:
        request = self.context.get("request")
        if request is None or not request.user.is_staff or self.parent is not None:
            return None  # (in a list it would cost queries per row)
        return dict(JobExecutorStateSerializer(job_executor_state(obj)).data)

    def get_error_detail(self, obj: Job) -> str:
        request = self.context.get("request")
        return obj.error_detail if request is not None and request.user.is_staff else ""


class JobCreateSerializer(serializers.Serializer[Any]):
    operation = serializers.UUIDField()
    workspace = serializers.UUIDField()
    inputs = serializers.JSONField(
        default=dict,
        help_text='Input name -> value; files by id; sets by {"set": "<id>"} or inline.',
    )
    executor = serializers.CharField(
        required=False,
        max_length=50,
        help_text="Where to run it, e.g. local-miniwdl or cromwell:<server name>; default: the "
        "server's routing for the operation's mode.",
    )


class JobCreateFormSerializer(JobCreateSerializer):
    """The browsable API's form to start a job: the operations and the workspaces you may run
    them in as choices, inputs as JSON (the page fills in the chosen operation's inputs).

    Only renders the form; ``JobCreateSerializer`` checks what is posted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        operations: list[tuple[str, str]] = []
        workspaces: list[tuple[str, str]] = []
        if user is not None and user.is_authenticated:
            operations = [
                (str(pk), f"{name} {version}")
                for pk, name, version in operations_visible_to(user)
                .order_by("name", "-created_at")
                .values_list("pk", "name", "version")[:FORM_CHOICES_LIMIT]
            ]
            workspaces = [
                (str(pk), name)
                for pk, name in workspaces_writable_by(user)
                .order_by("name")
                .values_list("pk", "name")[:FORM_CHOICES_LIMIT]
            ]
        self.fields["operation"] = serializers.ChoiceField(choices=operations)
        self.fields["workspace"] = serializers.ChoiceField(
            choices=workspaces, help_text="A workspace where you are an editor or owner."
        )
        self.fields["inputs"] = serializers.JSONField(
            initial=dict,
            style={"base_template": "textarea.html", "rows": 8},
            help_text='Input name -> value as JSON; files by id; sets by {"set": "<id>"}.',
        )


class JobLogsSerializer(serializers.Serializer[Any]):
    stdout = serializers.CharField()
    stderr = serializers.CharField()
    live = serializers.BooleanField(help_text="True when read from the running executor.")
