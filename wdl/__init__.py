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
from wdl.dependencies import bundle_files_zip, dependencies_zip
from wdl.described import DescriptionUnusable, signature_from_description
from wdl.errors import (
    ImportNotServed,
    MetadataInvalid,
    NothingToRun,
    WdlError,
    WorkflowInvalid,
)
from wdl.inputs import build_inputs
from wdl.loading import LoadedWorkflow, load_workflow
from wdl.outputs import (
    OutputsIncomplete,
    WorkflowOutputs,
    flatten_output_files,
    split_outputs,
)
from wdl.signature import derive_signature, merge_metadata, workflow_signature
from wdl.womtool_checks import womtool_warnings

__all__ = [
    "DEFAULT_MAIN",
    "Bundle",
    "DescriptionUnusable",
    "ImportNotServed",
    "LoadedWorkflow",
    "MetadataInvalid",
    "NothingToRun",
    "OutputsIncomplete",
    "WdlError",
    "WorkflowInvalid",
    "WorkflowOutputs",
    "build_inputs",
    "bundle_digest",
    "bundle_files_zip",
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
    "signature_from_description",
    "split_outputs",
    "womtool_warnings",
    "workflow_signature",
    "write_bundle",
]
