"""WDL bundles for Ferry, with miniwdl: load and validate a workflow and its imports, derive the
operation signature, build the engine's inputs, pack imports for Cromwell, read outputs back.
Plain Python: nothing here imports Django."""

from wdl.bundle import (
    DEFAULT_MAIN,
    Bundle,
    bundle_digest,
    bundle_from_file,
    bundle_from_folder,
    bundle_from_text,
    bundle_from_zip,
    open_bundle,
    write_bundle,
)
from wdl.dependencies import dependencies_zip
from wdl.errors import MetadataInvalid, WdlError, WorkflowInvalid
from wdl.inputs import build_inputs
from wdl.loading import LoadedWorkflow, load_workflow
from wdl.outputs import (
    OutputsIncomplete,
    WorkflowOutputs,
    flatten_output_files,
    split_outputs,
)
from wdl.signature import derive_signature, merge_metadata, workflow_signature

__all__ = [
    "DEFAULT_MAIN",
    "Bundle",
    "LoadedWorkflow",
    "MetadataInvalid",
    "OutputsIncomplete",
    "WdlError",
    "WorkflowInvalid",
    "WorkflowOutputs",
    "build_inputs",
    "bundle_digest",
    "bundle_from_file",
    "bundle_from_folder",
    "bundle_from_text",
    "bundle_from_zip",
    "dependencies_zip",
    "derive_signature",
    "flatten_output_files",
    "load_workflow",
    "merge_metadata",
    "open_bundle",
    "split_outputs",
    "workflow_signature",
    "write_bundle",
]
