"""The run specs ``operations`` writes into ``job.run_spec`` for executors to read.

These are what a job records when it is created (and, for WDL, what the worker adds before it
submits). Executors still check each value they read: a spec is stored JSON, and jobs created
by older versions may lack keys added since.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Mount(TypedDict):
    """One input file bound read-only into a container (for a ``webmev`` run: copied to
    ``target`` in the execution dir, which is the same path on the host and in the container)."""

    source: str  # absolute host path
    target: str  # absolute path inside the container
    fetch: NotRequired[str]  # a bucket object the worker downloads to ``source`` first


class ResourceLimits(TypedDict, total=False):
    """What a run may use; a missing limit takes the executor's default."""

    memory_mb: int
    cpus: float
    pids: int
    timeout_s: int


class WebmevFileOutput(TypedDict):
    """How a WebMEV operation's outputs.json gives one file output: a DataResource is a path,
    a VariableDataResource ``{"path": …, "resource_type": <one of resource_types>}``; ``many``:
    a list of those."""

    attribute_type: Literal["DataResource", "VariableDataResource"]
    many: bool
    resource_types: list[str]


class DockerRunSpec(TypedDict):
    """A docker-mode job, for the local Docker executor (see executors/docker.py).

    ``contract`` ``"webmev"`` (operations converted from WebMEV) runs ``argv`` (``command`` is
    its shell-quoted form, for people) after the image's ENTRYPOINT, with the inputs (``mounts``)
    copied into ``exec_dir``, mounted read-write at the same path; outputs.json is read there,
    as ``webmev_outputs`` says."""

    image: str
    command: str  # run as ["/bin/sh", "-c", command]
    mounts: list[Mount]
    limits: ResourceLimits
    requires_outputs_json: NotRequired[bool]
    file_outputs: NotRequired[list[str]]  # names of outputs that are files (or lists of files)
    contract: NotRequired[Literal["ferry", "webmev"]]  # absent: "ferry"
    argv: NotRequired[list[str]]
    exec_dir: NotRequired[str]
    webmev_outputs: NotRequired[dict[str, WebmevFileOutput]]


class EngineOutput(TypedDict, total=False):
    """How a WDL executor sees one output: files (one, or ``many`` in a structure that
    ``shape`` describes, see wdl/outputs.py) or a value of some type."""

    type: Any
    many: bool
    shape: dict[str, Any]
    wdl_output: str  # the engine's name for it, when not "<workflow>.<output name>"


class WdlRunSpec(TypedDict):
    """A WDL job (see operations/wdl_runs.py). The keys after ``limits`` are added by the
    worker before submit: ``inputs`` for every engine, ``input_files`` for engines that read
    local files (miniwdl), the workflow source, imports and Cromwell settings for engines that
    read buckets (Cromwell)."""

    mode: Literal["wdl"]
    workflow_dir: str
    main: str
    workflow_name: str
    values: dict[str, Any]
    files: dict[str, str]  # file id -> storage URI
    outputs: dict[str, EngineOutput]
    limits: ResourceLimits
    output_names: NotRequired[dict[str, str]]  # engine name (call.out) -> Ferry's (call__out)
    # miniwdl refuses the workflow (a Cromwell server accepted it): its imports are not known,
    # so every other file of its folder goes to Cromwell
    miniwdl_refuses: NotRequired[bool]
    inputs: NotRequired[dict[str, Any]]  # the engine's inputs JSON ({"wf.reads": …})
    staged: NotRequired[list[str]]  # input copies Ferry made in the engine's bucket
    input_files: NotRequired[list[str]]
    workflow_source: NotRequired[str]
    workflow_dependencies_zip_b64: NotRequired[str | None]
    labels: NotRequired[dict[str, str]]
    options: NotRequired[dict[str, Any]]
    notices: NotRequired[list[str]]  # what the job is told about its run (e.g. lowered requests)


RunSpec = DockerRunSpec | WdlRunSpec
