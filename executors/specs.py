"""The run specs ``operations`` writes into ``job.run_spec`` for executors to read.

These are what a job records when it is created (and, for WDL, what the worker adds before it
submits). Executors still check each value they read: a spec is stored JSON, and jobs created
by older versions may lack keys added since.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Mount(TypedDict):
    """One input file bound read-only into a container."""

    source: str  # absolute host path
    target: str  # absolute path inside the container
    fetch: NotRequired[str]  # a bucket object the worker downloads to ``source`` first


class ResourceLimits(TypedDict, total=False):
    """What a run may use; a missing limit takes the executor's default."""

    memory_mb: int
    cpus: float
    pids: int
    timeout_s: int


class DockerRunSpec(TypedDict):
    """A docker-mode job, for the local Docker executor (see executors/docker.py)."""

    image: str
    command: str  # run as ["/bin/sh", "-c", command]
    mounts: list[Mount]
    limits: ResourceLimits
    requires_outputs_json: NotRequired[bool]
    file_outputs: NotRequired[list[str]]  # names of outputs that are files (or lists of files)


class EngineOutput(TypedDict, total=False):
    """How a WDL executor sees one output: files (one, or ``many`` in a structure that
    ``shape`` describes, see wdl/outputs.py) or a value of some type."""

    type: Any
    many: bool
    shape: dict[str, Any]


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
    inputs: NotRequired[dict[str, Any]]  # the engine's inputs JSON ({"wf.reads": …})
    staged: NotRequired[list[str]]  # input copies Ferry made in the engine's bucket
    input_files: NotRequired[list[str]]
    workflow_source: NotRequired[str]
    workflow_dependencies_zip_b64: NotRequired[str | None]
    labels: NotRequired[dict[str, str]]
    options: NotRequired[dict[str, Any]]


RunSpec = DockerRunSpec | WdlRunSpec
