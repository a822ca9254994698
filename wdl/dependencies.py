"""The imports of a workflow packed as the zip Cromwell takes as ``workflowDependencies``."""

from __future__ import annotations

import io
import posixpath
import zipfile

from wdl.bundle import Bundle
from wdl.errors import WorkflowInvalid, bundle_error
from wdl.loading import LoadedWorkflow, load_workflow

_FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16


def dependencies_zip(source: Bundle | LoadedWorkflow) -> bytes | None:
    """Every imported file, by its path relative to the main file's folder (the bundle root when
    the main file is at the top), or ``None`` without imports. The bytes depend only on the files:
    entries are sorted and carry a fixed timestamp. Cromwell resolves imports from the main file's
    folder, so an import above it is reported as :class:`WorkflowInvalid`."""
    loaded = source if isinstance(source, LoadedWorkflow) else load_workflow(source)
    if not loaded.imported_files:
        return None
    main_folder = posixpath.dirname(loaded.bundle.main)
    entries: dict[str, bytes] = {}
    problems = []
    for path in loaded.imported_files:
        name = posixpath.relpath(path, main_folder) if main_folder else path
        if name.startswith("../"):
            problems.append(
                bundle_error(
                    f"imported from outside the folder of {loaded.bundle.main}, which Cromwell "
                    "can't resolve",
                    file=path,
                )
            )
        entries[name] = loaded.bundle.files[path]
    if problems:
        raise WorkflowInvalid(problems)
    return _zip(entries)


def bundle_files_zip(bundle: Bundle) -> bytes | None:
    """Every file of the bundle but its main one, by its path relative to the main file's folder
    (files above that folder left out: Cromwell can't import them), or ``None`` when there is
    none: the imports of a document miniwdl can't load (so its imports are not known), for a
    Cromwell server that accepts it."""
    main_folder = posixpath.dirname(bundle.main)
    entries: dict[str, bytes] = {}
    for path, content in bundle.files.items():
        name = posixpath.relpath(path, main_folder) if main_folder else path
        if path != bundle.main and not name.startswith("../"):
            entries[name] = content
    return _zip(entries) if entries else None


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, so the mode above is read as one
            archive.writestr(info, entries[name])
    return buffer.getvalue()
