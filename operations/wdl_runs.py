"""WDL jobs: what a job records when it is created, and what the worker prepares before it
submits the run (the engine's inputs JSON with each file where that engine can read it).

At creation (in the request, fast: no bytes move) the run spec holds the validated values and
where each input file is stored::

    {"mode": "wdl", "workflow_dir": "/…/operations/<name>/<revision>", "main": "main.wdl",
     "workflow_name": "wf", "values": {"reads": "<file id>", "n": 3},
     "files": {"<file id>": "s3://…" | "file:///…"}, "outputs": {...}, "limits": {...}}

Before submit (in the worker) :func:`prepare_wdl_run` adds ``inputs`` (``{"wf.reads": …}``):
local paths for executors that read local files (miniwdl: bucket objects are downloaded to the
work folder), bucket URIs for executors that read buckets (Cromwell: objects outside its
``inputs_location`` bucket are copied there, server-side within a provider). The executor's
``prepare_wdl`` then adds what its engine needs besides (Cromwell: ``workflow_source``, the
imports zip, labels and options).
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any, cast

from django.conf import settings

import wdl
import wdl.outputs
from api import storage
from api.events import record_event
from api.exceptions import ApplicationError
from api.models import File
from api.storage import buckets, locations
from executors.base import Executor
from executors.specs import EngineOutput, ResourceLimits, WdlRunSpec
from wdl.errors import format_error
from wdl.input_shapes import file_refs

from .models import Job, Operation

logger = logging.getLogger(__name__)


def bundle_dir(operation: Operation) -> str:
    """Where the operation's WDL files are kept (written by ingestion)."""
    from .ingestion import operation_bundle_dir

    folder = operation_bundle_dir(operation)
    if not (folder / (operation.spec.get("workflow") or wdl.DEFAULT_MAIN)).is_file():
        raise ApplicationError(
            f"The WDL operation {operation.name} has lost its stored workflow ({folder}); "
            "an admin adds it again from its source.",
            code="operation_broken",
            status_code=409,
        )
    return str(folder)


def _file_ids(spec: dict[str, Any], values: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name, value in values.items():  # files at any depth of a structured input too
        found += [str(ref) for ref in file_refs(spec["inputs"][name], value)]
    return found


def _engine_output(out: dict[str, Any]) -> EngineOutput:
    """How executors see an output: files (one, or ``many``: any structure holding files, whose
    ``shape`` says how, see wdl/outputs.py) or a value of some type."""
    named: EngineOutput = {"wdl_output": out["wdl_output"]} if "wdl_output" in out else {}
    if wdl.outputs.is_file_output(out):
        shape = {
            k: v
            for k, v in out.items()
            if k not in ("description", "required", "webmev", "wdl_output")
        }
        return {"type": "file", "many": out.get("type") != "file", "shape": shape, **named}
    return {"type": out.get("type"), "many": out.get("type") == "list", **named}


def build_wdl_run_spec(operation: Operation, values: dict[str, Any]) -> WdlRunSpec:
    spec = operation.spec
    ids = wdl.outputs.file_refs_of(spec["inputs"], values)
    files = {str(f.pk): f.storage_uri for f in File.objects.filter(pk__in=ids)}
    outputs = {name: _engine_output(out) for name, out in spec.get("outputs", {}).items()}
    resources = spec.get("resources") or {}
    limits: ResourceLimits = (
        {"timeout_s": resources["timeout_s"]} if "timeout_s" in resources else {}
    )
    run_spec: WdlRunSpec = {
        "mode": "wdl",
        "workflow_dir": bundle_dir(operation),
        "main": spec.get("workflow") or wdl.DEFAULT_MAIN,
        "workflow_name": (spec.get("wdl") or {}).get("workflow_name", ""),
        "values": values,
        "files": files,
        "outputs": outputs,
        "limits": limits,
        # The engines' names of outputs Ferry renamed (draft-2 ``call.output``) -> Ferry's.
        "output_names": {
            engine: ferry
            for ferry, engine in ((spec.get("wdl") or {}).get("output_names") or {}).items()
        },
    }
    if (spec.get("wdl") or {}).get("miniwdl_refuses"):
        run_spec["miniwdl_refuses"] = True
    return run_spec


def reads_buckets(executor: Executor) -> bool:
    return executor.reads_buckets


def _safe_name(uri: str) -> str:
    name = PurePosixPath(uri).name
    return name if name not in ("", ".", "..") else "input"


def _local_input(job: Job, file_id: str, uri: str) -> str:
    if storage.is_local(uri):
        return storage.local_path(uri)
    name = _safe_name(uri)
    cache = Path(settings.FERRY_WORK_ROOT) / "inputs" / file_id / name
    return str(storage.localize(uri, cache))


def _bucket_input(job: Job, executor: Executor, file_id: str, uri: str) -> str:
    """The URI the executor's backend reads: the object itself when it already lives in the
    executor's bucket, else a copy there (server-side within a provider, streamed otherwise)."""
    staging = executor.options.get("inputs_location")
    if not staging:
        if storage.is_local(uri):
            raise ApplicationError(
                "This Cromwell server has no inputs_location to copy local files to; an admin "
                "sets options.inputs_location (a bucket prefix its backend reads).",
                code="executor_misconfigured",
            )
        return uri
    target = locations.location_of(staging)
    if target is None or target.is_local:
        raise ApplicationError(
            f"The Cromwell inputs_location {staging} is not a registered bucket location.",
            code="executor_misconfigured",
        )
    staging_ref = buckets.parse_uri(staging)
    if not storage.is_local(uri):
        ref = buckets.parse_uri(uri)
        if ref.scheme == staging_ref.scheme and ref.bucket == staging_ref.bucket:
            return uri
    destination = staging_ref.child(f"{job.pk}/{file_id}/{_safe_name(uri)}")
    _record_staged(job, destination.uri)  # before the copy: a worker may die during it
    if storage.is_local(uri):
        with open(storage.local_path(uri), "rb") as fh:
            size = Path(storage.local_path(uri)).stat().st_size
            target.client().put_stream(destination, fh, size)
        return destination.uri
    source, source_ref = locations.resolve(uri)
    if locations.same_account(source, target):
        target.client().copy(source_ref, destination)
    else:
        buckets.streamed_copy(source.client(), source_ref, target.client(), destination)
    return destination.uri


def _record_staged(job: Job, uri: str) -> None:
    """Note a copy Ferry is about to make for this job, so its clean-up removes it, and only
    what was noted here: the run's input values (a String may hold any URI) are never read
    for what to delete."""
    staged = list(job.run_spec.get("staged") or [])
    if uri in staged:
        return
    staged.append(uri)
    job.run_spec = {**job.run_spec, "staged": staged}
    Job.objects.filter(pk=job.pk).update(run_spec=job.run_spec)


def _staging_prefix(job: Job, staging: str | None) -> str | None:
    """Where this job's input copies go: ``<inputs_location>/<job id>/``."""
    if not staging:
        return None
    try:
        return buckets.parse_uri(str(staging)).child(f"{job.pk}/").uri
    except buckets.InvalidObjectURI:
        return None


def prepare_wdl_run(job: Job, executor: Executor) -> None:
    """Fill in the engine's inputs (and what the executor's prepare_wdl adds) before submit."""
    spec = cast(WdlRunSpec, dict(job.run_spec))
    if spec.get("mode") != "wdl" or "inputs" in spec:
        return
    assert job.operation is not None
    files: dict[str, str] = spec.get("files", {})
    local_files: list[str] = []
    if reads_buckets(executor):

        def location(file_id: str) -> str:
            return _bucket_input(job, executor, file_id, files[file_id])

    else:

        def location(file_id: str) -> str:
            path = _local_input(job, file_id, files[file_id])
            local_files.append(path)
            return path

    try:
        spec["inputs"] = wdl.build_inputs(
            spec["workflow_name"], job.operation.spec, spec.get("values", {}), location
        )
        spec["staged"] = list(job.run_spec.get("staged") or [])  # as _record_staged noted
        if not reads_buckets(executor):
            # The only host files the run may name as outputs besides its own (miniwdl).
            spec["input_files"] = sorted(set(local_files))
    except ValueError as exc:
        raise ApplicationError(f"The workflow's inputs can't be built: {exc}") from exc
    spec = executor.prepare_wdl(spec, job_id=job.pk, workspace_id=str(job.workspace_id))
    for notice in spec.get("notices") or []:
        record_event(
            workspace_id=job.workspace_id,
            job_id=job.pk,
            kind="job.notice",
            payload={"job": str(job.pk), "message": notice},
        )
    if "workflow_source" in spec:
        has_imports = spec.get("workflow_dependencies_zip_b64") is not None
        check_with_engine(job, executor, spec["workflow_source"], spec["inputs"], has_imports)
    Job.objects.filter(pk=job.pk).update(run_spec=spec)
    job.run_spec = spec


_ACCEPTED: set[tuple[str, str]] = set()  # (executor alias, operation revision) the engine accepted


def check_with_engine(
    job: Job, executor: Executor, source: str, inputs: dict[str, Any], has_imports: bool
) -> None:
    """Ask the engine that will run the workflow whether it accepts it (Cromwell's
    ``describe``: Cromwell and miniwdl disagree on a few documents). Once per operation
    revision and server in this process. A Cromwell without describe (older than 41, or behind
    a gateway; its health says so) gets the workflow checked by miniwdl instead. Cromwell's
    describe takes no imports (``workflowDependencies``), so a workflow with imports is checked
    by miniwdl only (when it was added)."""
    assert job.operation is not None
    key = (executor.alias, job.operation.revision)
    if not executor.describes_workflows or key in _ACCEPTED or has_imports:
        return
    from executors.base import ExecutorError, ExecutorUnavailable

    try:
        described = executor.describe(source, inputs=inputs)
    except ExecutorUnavailable:
        raise
    except ExecutorError as exc:
        raise ApplicationError(f"{executor.alias} could not check the workflow: {exc}") from exc
    if described is None:
        if not job.operation.executors:  # (miniwdl refuses an operation only Cromwell takes)
            _check_with_miniwdl(executor, source)
    elif not described.get("valid", True):
        errors = [str(e) for e in described.get("errors") or []] or ["no reason given"]
        raise ApplicationError(
            f"{executor.alias} refuses the workflow: {'; '.join(errors)}",
            details={"workflow": errors},
            code="invalid_workflow",
        )
    _ACCEPTED.add(key)


def _check_with_miniwdl(executor: Executor, source: str) -> None:
    """The check when the engine can't do its own: miniwdl's (the same as when it was added)."""
    logger.info("%s has no describe endpoint: the workflow is checked with miniwdl", executor.alias)
    try:
        wdl.load_workflow(wdl.bundle_from_text(source))
    except wdl.WorkflowInvalid as exc:
        errors = [format_error(e) for e in exc.errors]
        raise ApplicationError(
            f"The workflow is invalid (checked with miniwdl: {executor.alias} can't check "
            f"workflows itself): {exc}",
            details={"workflow": errors},
            code="invalid_workflow",
        ) from exc


def remove_staged_inputs(job: Job, inputs_location: str | None) -> None:
    """Delete the copies of a finished job's inputs in its Cromwell's ``inputs_location``:
    only those under the job's own staging prefix, and never an object a File stands for
    (runs prepared by older versions listed other URIs here too)."""
    prefix = _staging_prefix(job, inputs_location)
    for uri in job.run_spec.get("staged", []):
        if not isinstance(uri, str) or prefix is None or not uri.startswith(prefix):
            logger.warning("job %s: not removing %s, which Ferry did not stage", job.pk, uri)
            continue
        if File.objects.filter(storage_uri=uri).exists():
            logger.warning("job %s: not removing %s, which a file stands for", job.pk, uri)
            continue
        try:
            storage.delete_object(uri)
        except ApplicationError as exc:
            logger.warning("could not remove staged input %s: %s", uri, exc.message)
