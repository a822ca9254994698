"""Load and validate a bundle's workflow with miniwdl, reading imports from the bundle only.

Imports are resolved relative to the importing file, as miniwdl and Cromwell do, and must stay
inside the bundle: absolute paths, ``file://`` and ``http(s)://`` URIs, and relative paths that
climb above the root are refused. Every problem miniwdl reports comes back in one
:class:`~wdl.errors.WorkflowInvalid`.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import WDL

from wdl.bundle import Bundle
from wdl.errors import (
    ImportNotServed,
    ImportRefused,
    NothingToRun,
    WdlError,
    WorkflowInvalid,
    bundle_error,
    errors_from_exception,
    positioned_error,
)

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
IMPORT_MAX_DEPTH = 10


@dataclass(frozen=True)
class LoadedWorkflow:
    """A bundle whose workflow passed miniwdl's checks. ``workflow`` is the document's single
    task when it has no workflow (the engines run it by itself)."""

    bundle: Bundle
    document: WDL.Tree.Document
    workflow: WDL.Tree.Workflow | WDL.Tree.Task
    imported_files: tuple[str, ...]  # bundle paths of every imported document, sorted

    @property
    def workflow_name(self) -> str:
        return self.workflow.name

    @property
    def is_task(self) -> bool:
        return isinstance(self.workflow, WDL.Tree.Task)

    @property
    def wdl_version(self) -> str:
        return self.document.wdl_version or "draft-2"

    def relative(self, absolute: str) -> str:
        return self.bundle.relative(absolute)

    def error_at(self, pos: WDL.Error.SourcePosition, message: str) -> WdlError:
        return positioned_error(pos, message, self.bundle.relative)


def resolve_import(bundle: Bundle, uri: str, importer: str | None) -> str:
    """The bundle path an import names, relative to the importing file's folder."""
    if _SCHEME_RE.match(uri):
        raise ImportRefused(
            "imports must be files of the bundle, not URLs: put the file in the bundle "
            "and import it by its relative path"
        )
    if uri.startswith("/") or uri.startswith("\\"):
        raise ImportRefused("imports must use a path relative to the importing file, not /...")
    base = posixpath.dirname(importer) if importer else ""
    resolved = posixpath.normpath(posixpath.join(base, uri))
    if resolved == ".." or resolved.startswith("../"):
        raise ImportRefused("the path leads outside the bundle")
    if resolved not in bundle.files:
        raise ImportRefused(f"{resolved} is not in the bundle")
    return resolved


SourceReader = Callable[[str, list[str], WDL.Tree.Document | None], Awaitable[WDL.ReadSourceResult]]


def _reader(bundle: Bundle) -> SourceReader:
    """miniwdl's ``read_source`` limited to the bundle's files."""

    async def read_source(
        uri: str, path: list[str], importer: WDL.Tree.Document | None
    ) -> WDL.ReadSourceResult:
        importer_path = bundle.relative(importer.pos.abspath) if importer else None
        resolved = resolve_import(bundle, uri, importer_path)
        try:
            text = bundle.files[resolved].decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportRefused(f"{resolved} is not UTF-8 text ({exc.reason})") from None
        # As miniwdl's own reader (text mode) sees it: its parser trips on \r\n line ends.
        text = text.replace("\r\n", "\n")
        return WDL.ReadSourceResult(source_text=text, abspath=bundle.absolute(resolved))

    return read_source


def _imported_files(document: WDL.Tree.Document, bundle: Bundle) -> tuple[str, ...]:
    seen: set[str] = set()
    pending = [imp.doc for imp in document.imports if imp.doc is not None]
    while pending:
        doc = pending.pop()
        relative = bundle.relative(doc.pos.abspath)
        if relative in seen:
            continue
        seen.add(relative)
        pending += [imp.doc for imp in doc.imports if imp.doc is not None]
    return tuple(sorted(seen))


def parse_bundle(bundle: Bundle) -> WDL.Tree.Document:
    """miniwdl's document for the bundle's main file; raise :class:`WorkflowInvalid`."""
    main = bundle.main
    try:
        resolve_import(bundle, main, None)
    except ImportRefused as exc:
        raise WorkflowInvalid([bundle_error(str(exc), file=main)]) from None
    try:
        return _run(bundle)
    except ImportRefused as exc:  # the main file itself could not be read
        raise WorkflowInvalid([bundle_error(str(exc), file=main)]) from None
    except (
        WDL.Error.SyntaxError,
        WDL.Error.ValidationError,
        WDL.Error.MultipleValidationErrors,
        WDL.Error.ImportError,
    ) as exc:
        errors = errors_from_exception(exc, bundle.relative)
        if _import_refused(exc):
            raise ImportNotServed(errors) from None
        raise WorkflowInvalid(errors) from None


def _import_refused(exc: BaseException) -> bool:
    """Whether the bundle reader refused one of the imports (a URL, outside the bundle…)."""
    if isinstance(exc, WDL.Error.MultipleValidationErrors):
        return any(_import_refused(inner) for inner in exc.exceptions)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ImportRefused):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _run(bundle: Bundle) -> WDL.Tree.Document:
    """Run the loader in this thread, or in a helper thread when an event loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_load(bundle))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _load(bundle)).result()


async def _load(bundle: Bundle) -> WDL.Tree.Document:
    return await WDL.load_async(
        bundle.main,
        path=[],
        read_source=_reader(bundle),
        import_max_depth=IMPORT_MAX_DEPTH,
    )


def _no_workflow(bundle: Bundle, document: WDL.Tree.Document) -> NothingToRun:
    tasks = document.tasks
    if not tasks:
        return NothingToRun(
            [
                {
                    "file": bundle.main,
                    "line": 1,
                    "column": 1,
                    "message": f"no workflow and no task in {bundle.main} (a WDL operation "
                    "needs a workflow, or a document of one task)",
                }
            ]
        )
    names = ", ".join(task.name for task in tasks)
    return NothingToRun(
        [
            positioned_error(
                tasks[1].pos,
                f"{bundle.main} is a task library ({len(tasks)} tasks: {names}) with no "
                "workflow: an operation runs one workflow, or a document of exactly one task; "
                "add a workflow that calls these tasks and name it as the main file",
                bundle.relative,
            )
        ]
    )


def load_workflow(bundle: Bundle) -> LoadedWorkflow:
    """Parse and typecheck the bundle (imports included). Its main file holds a workflow, or
    exactly one task and no workflow (both engines run such a task by itself: its inputs and
    outputs are the operation's, named ``<task>.<name>`` in the engines' JSON); a task library
    (several tasks, no workflow) is refused."""
    document = parse_bundle(bundle)
    runnable: WDL.Tree.Workflow | WDL.Tree.Task
    if document.workflow is not None:
        runnable = document.workflow
    elif len(document.tasks) == 1:
        runnable = document.tasks[0]
    else:
        raise _no_workflow(bundle, document)
    return LoadedWorkflow(
        bundle=bundle,
        document=document,
        workflow=runnable,
        imported_files=_imported_files(document, bundle),
    )


NodeT = TypeVar("NodeT")


def body_nodes(nodes: list[Any], kind: type[NodeT]) -> Iterator[NodeT]:
    """The ``kind`` nodes of a workflow body, inside scatters and conditionals too."""
    for node in nodes:
        if isinstance(node, kind):
            yield node
        elif isinstance(node, WDL.Tree.WorkflowSection):
            yield from body_nodes(node.body, kind)
