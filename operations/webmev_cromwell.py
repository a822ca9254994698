"""Add a WebMEV Cromwell-mode operation: ``operation_spec.json`` (``"mode": "cromwell"``),
``main.wdl`` (draft-2, no ``version`` line), the other top-level ``*.wdl`` files it imports, and
``docker/`` with one Dockerfile per task image.

It becomes a Ferry WDL operation that keeps WebMEV's spec: the spec's input keys are the
workflow's fully qualified names (``HierarchicalCluster.linkage``); only those inputs are
exposed, with their choices and defaults, and every other workflow input keeps its WDL
declaration. What the conversion (:func:`operations.webmev.convert_webmev`) gives and this
module relies on: ``mode`` ``"wdl"``, ``workflow``, per input ``wdl_input`` (the FQN) and per
output ``wdl_output``, and ``webmev`` (resource types) on both.

Checks, each refused with where it is: the workflow loads with miniwdl; every ``wdl_input``
names a workflow input and every ``wdl_output`` a workflow output, of a matching type; every
required workflow input is in the spec (required, or with a default); every task names its image
as a literal ``runtime { docker: "…" }``; every image is a valid image name with a Dockerfile.

Images (WebMEV's convention): the image ``<registry>/<org>/<name>[:tag]`` is built from
``docker/Dockerfile.<name>``, or from ``docker/Dockerfile`` when the workflow has one image or
``<name>`` is the repository's (folder's) name; the build context is ``docker/``. A tagged image
is built with exactly that tag. An untagged one gets, as WebMEV gives its own images,
``:sha-<commit>`` (for a folder, which has no commit: ``:rev-<first 40 hex digits of its
content digest>``), and the stored workflow is rewritten to name that tag, so miniwdl and
Cromwell run the same images. A build never replaces an image that Ferry did not build for the
same operation. The images are listed in ``spec["wdl"]["images"]`` (WDL name → tag run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import WDL

import wdl
from executors.base import Executor, ExecutorUnavailable
from wdl.errors import WdlError
from wdl.outputs import holds_files
from wdl.runtime import workflow_tasks

from . import webmev
from .ingestion import (
    FetchedSource,
    IngestionError,
    Progress,
    _record,
    _stored_log,
    build_image,
    image_builder,
    store_bundle,
    wdl_bundle_dir,
    workflow_invalid,
)
from .models import Operation
from .spec import ELEMENT_INPUT_TYPES, SpecError, child_path, load_document

DOCKER_FOLDER = "docker"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE_RE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?)/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$"
)
IMAGE_MAX_LENGTH = 255
_COMPATIBLE = {  # Ferry type from WebMEV's spec → Ferry types the WDL side may have
    "option": {"string"},
    "string": {"string"},
    "integer": {"integer"},
    "float": {"float"},
    "boolean": {"boolean"},
    "file": {"file"},
    "list": {"list", "file"},
}


def _compatible_kinds(item: Mapping[str, Any]) -> set[str]:
    """The WDL types an input of WebMEV's spec may stand for: a sample/gene set is its ids, an
    ``Array[String]`` with a list converter (``render: "json"``), else one comma-joined String."""
    if _kind(item) in ELEMENT_INPUT_TYPES:
        return {"list"} if item.get("render") == "json" else {"string"}
    return _COMPATIBLE.get(_kind(item), set())


def webmev_cromwell_document(folder: Path) -> Mapping[str, Any] | None:
    """The source's ``operation_spec.json`` when it is a WebMEV Cromwell operation."""
    path = folder / webmev.SPEC_FILENAME
    if not path.is_file():
        return None
    raw = load_document(path.read_bytes(), source_name=webmev.SPEC_FILENAME)
    return raw if isinstance(raw, Mapping) and raw.get("mode") == "cromwell" else None


# --- the workflow and what the spec exposes -------------------------------------------------------


def webmev_bundle(folder: Path, *, shown: str) -> wdl.Bundle:
    """``main.wdl`` and the other ``*.wdl`` files at the top (WebMEV sends those, by name)."""
    if not (folder / wdl.DEFAULT_MAIN).is_file():
        raise IngestionError(
            f"{shown} has no {wdl.DEFAULT_MAIN}: a WebMEV Cromwell operation runs it",
            code="invalid_source",
            details={"workflow": [f"no {wdl.DEFAULT_MAIN}"]},
        )
    files = {
        path.name: path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.is_symlink() and path.name.lower().endswith(".wdl")
    }
    return wdl.Bundle(files=files, main=wdl.DEFAULT_MAIN, origin=str(folder.resolve()), label=shown)


def _where(section: str, fqn: str) -> str:
    return child_path(f"$.{section}", fqn)


def _kind(spec: Mapping[str, Any]) -> str:
    return str(spec.get("type"))


def exposure_problems(
    spec: Mapping[str, Any], signature: Mapping[str, Any], workflow_name: str
) -> list[dict[str, str]]:
    """What doesn't fit between WebMEV's spec and the workflow, by path in operation_spec.json."""
    problems: list[dict[str, str]] = []
    wdl_inputs = {f"{workflow_name}.{n}": s for n, s in signature["inputs"].items()}
    wdl_outputs = {f"{workflow_name}.{n}": s for n, s in signature["outputs"].items()}
    exposed: set[str] = set()
    for item in spec["inputs"].values():
        fqn = item["wdl_input"]
        path = _where("inputs", fqn)
        target = wdl_inputs.get(fqn)
        if target is None:
            known = ", ".join(sorted(wdl_inputs)) or "none"
            problems.append(
                {
                    "path": path,
                    "message": f"names no input of workflow {workflow_name} (its inputs: {known})",
                }
            )
            continue
        exposed.add(fqn)
        if _kind(target) not in _compatible_kinds(item):
            problems.append(
                {
                    "path": child_path(path, "spec"),
                    "message": f"is {_kind(item)} but the workflow declares {fqn} as "
                    f"{_kind(target)}",
                }
            )
        elif target.get("required") and not item.get("required") and item.get("default") is None:
            problems.append(
                {
                    "path": child_path(path, "required"),
                    "message": f"the workflow requires {fqn}: mark it required or give it a "
                    "default",
                }
            )
    for fqn, target in wdl_inputs.items():
        if target.get("required") and fqn not in exposed:
            problems.append(
                {
                    "path": "$.inputs",
                    "message": f"the workflow's required input {fqn} is not in the spec "
                    "(only the spec's inputs are exposed; every other one must have a "
                    "value in the WDL)",
                }
            )
    for item in spec["outputs"].values():
        fqn = item["wdl_output"]
        target = wdl_outputs.get(fqn)
        if target is None:
            known = ", ".join(sorted(wdl_outputs)) or "none"
            problems.append(
                {
                    "path": _where("outputs", fqn),
                    "message": f"names no output of workflow {workflow_name} "
                    f"(its outputs: {known})",
                }
            )
        elif holds_files(item) != holds_files(target):
            problems.append(
                {
                    "path": child_path(_where("outputs", fqn), "spec"),
                    "message": f"is {_kind(item)} but the workflow declares {fqn} as "
                    f"{_kind(target)}",
                }
            )
    return problems


# --- the tasks' images ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeImage:
    """One task's ``runtime { docker: "…" }``: where it is and the image it names."""

    task: str
    file: str  # bundle path
    line: int
    column: int
    end_line: int
    end_column: int
    named: str


@dataclass(frozen=True)
class ImagePlan:
    named: str  # as the WDL names it
    tag: str  # what is built and run
    dockerfile: str | None  # relative to the source; None: an image already present, used as is


def runtime_images(loaded: wdl.LoadedWorkflow) -> list[RuntimeImage]:
    """Every task's image; WorkflowInvalid when a task names none, or not as a literal."""
    found: list[RuntimeImage] = []
    errors: list[WdlError] = []
    for task in workflow_tasks(loaded):
        expr = task.runtime.get("docker") or task.runtime.get("container")
        if expr is None:
            errors.append(
                loaded.error_at(
                    task.pos,
                    f'task {task.name} names no image (runtime {{ docker: "…" }}): Ferry '
                    "builds each task's image from docker/",
                )
            )
            continue
        literal = expr.literal
        if not isinstance(literal, WDL.Value.String):
            errors.append(
                loaded.error_at(
                    expr.pos,
                    f"task {task.name}'s runtime docker must be a string literal naming its "
                    "image (Ferry builds it before the run)",
                )
            )
            continue
        pos = expr.pos
        found.append(
            RuntimeImage(
                task=task.name,
                file=loaded.relative(pos.abspath),
                line=pos.line,
                column=pos.column,
                end_line=pos.end_line,
                end_column=pos.end_column,
                named=str(literal.value),
            )
        )
    if errors:
        raise wdl.WorkflowInvalid(errors)
    return found


def parse_image(named: str) -> tuple[str, str | None]:
    """``ghcr.io/web-mev/mev-hcl:1.0`` → (``ghcr.io/web-mev/mev-hcl``, ``1.0``); ValueError
    for a name Docker wouldn't take (``..`` parts, upper case, digests…)."""
    if "@" in named:
        raise ValueError(
            "is pinned by digest; Ferry builds the image from docker/ and can't give it that "
            "digest: name it by tag"
        )
    match = _IMAGE_RE.match(named)
    if match is None or len(named) > IMAGE_MAX_LENGTH:
        raise ValueError(
            "is not a valid image name (lower-case path parts of letters, digits and . _ -, "
            "an optional registry and :tag)"
        )
    tag = match.group("tag")
    repository = named[: -(len(tag) + 1)] if tag else named
    return repository, tag


def _local_image_labels(builder: Executor, tag: str) -> dict[str, str] | None:
    try:
        return builder.image_labels(tag)
    except ExecutorUnavailable as exc:
        raise IngestionError(str(exc), code="docker_unavailable", status_code=503) from None


@dataclass(frozen=True)
class _Planning:
    """What every image of one operation is planned against."""

    folder: Path
    operation: str
    label: str
    is_git: bool
    untagged_tag: str
    single_image: bool
    builder: Executor


def _at(image: RuntimeImage, message: str) -> WdlError:
    return {"file": image.file, "line": image.line, "column": image.column, "message": message}


def _plan_image(image: RuntimeImage, how: _Planning) -> ImagePlan | WdlError:
    """The plan for one image the WDL names, or the problem at its runtime line."""
    try:
        repository, tag = parse_image(image.named)
    except ValueError as exc:
        return _at(image, f"image {json.dumps(image.named)} {exc}")
    name = repository.rsplit("/", 1)[-1]
    candidates = [f"{DOCKER_FOLDER}/Dockerfile.{name}"]
    if how.single_image or name == how.label:
        candidates.append(f"{DOCKER_FOLDER}/Dockerfile")
    dockerfile = next((c for c in candidates if (how.folder / c).is_file()), None)
    final = f"{repository}:{tag or how.untagged_tag}"
    present = _local_image_labels(how.builder, final)
    if dockerfile is None:
        if tag and present is not None:
            return ImagePlan(image.named, final, None)
        return _at(
            image,
            f"image {json.dumps(image.named)} (task {image.task}) has no Dockerfile: "
            f"expected {' or '.join(candidates)}",
        )
    if present is not None and tag is None and how.is_git and name == how.label:
        # The image WebMEV publishes for this commit of the repository (GitHub Actions
        # build docker/Dockerfile as ghcr.io/web-mev/<repo>:sha-<commit>), present on the
        # engine: WebMEV pulls it rather than building, and so does Ferry here.
        return ImagePlan(image.named, final, None)
    if present is not None and present.get("org.ferry.operation") != how.operation:
        return _at(
            image,
            f"image {final} already exists and was not built for {how.operation}: Ferry "
            "won't replace it (name the image by a tag of its own)",
        )
    return ImagePlan(image.named, final, dockerfile)


def plan_images(
    images: list[RuntimeImage],
    folder: Path,
    *,
    operation: str,
    label: str,
    revision: str,
    is_git: bool,
    builder: Executor,
) -> dict[str, ImagePlan]:
    """Per image named in the WDL: the Dockerfile it is built from and the tag it gets.
    Problems are WorkflowInvalid errors at the runtime line that names the image."""
    how = _Planning(
        folder=folder,
        operation=operation,
        label=label,
        is_git=is_git,
        untagged_tag=f"sha-{revision}" if is_git else f"rev-{revision[:40]}",
        single_image=len({image.named for image in images}) == 1,
        builder=builder,
    )
    plans: dict[str, ImagePlan] = {}
    errors: list[WdlError] = []
    for image in images:
        if image.named in plans:
            continue
        planned = _plan_image(image, how)
        if isinstance(planned, ImagePlan):
            plans[image.named] = planned
        else:
            errors.append(planned)
    if errors:
        raise wdl.WorkflowInvalid(errors)
    return plans


def build_runtime_images(
    builder: Executor,
    folder: Path,
    plans: Mapping[str, ImagePlan],
    *,
    labels: dict[str, str],
    report: Progress,
) -> str:
    """Build every planned image (context ``docker/``); return the build logs, one after the
    other. The one place a Cromwell-mode operation's images are built."""
    logs: list[str] = []
    for plan in plans.values():
        if plan.dockerfile is None:
            report(f"Using {plan.tag} as present on the Docker engine (not built)")
            continue
        report(f"Building {plan.tag} from {plan.dockerfile}")
        log = build_image(
            builder,
            context=folder / DOCKER_FOLDER,
            dockerfile=plan.dockerfile,
            tag=plan.tag,
            labels={**labels, "org.ferry.wdl-image": plan.named},
            report=report,
        )
        logs.append(f"=== {plan.tag} ({plan.dockerfile})\n{log}")
        report(f"Built {plan.tag}")
    return "".join(logs)


def rewrite_images(
    bundle: wdl.Bundle, images: list[RuntimeImage], plans: Mapping[str, ImagePlan]
) -> wdl.Bundle:
    """The bundle with each runtime image that got another tag naming that tag (only the string
    literal at the runtime line changes)."""
    files = dict(bundle.files)
    by_file: dict[str, list[RuntimeImage]] = {}
    for image in images:
        if plans[image.named].tag != image.named:
            by_file.setdefault(image.file, []).append(image)
    for path, found in by_file.items():
        lines = files[path].decode("utf-8").split("\n")
        for image in sorted(found, key=lambda i: (i.line, i.column), reverse=True):
            text = lines[image.line - 1]
            literal = text[image.column - 1 : image.end_column - 1]
            if image.line != image.end_line or literal[1:-1] != image.named:
                raise IngestionError(
                    f"{path}:{image.line}: can't rewrite the image of task {image.task}",
                    code="invalid_workflow",
                )
            quote = literal[0]
            new = f"{quote}{plans[image.named].tag}{quote}"
            lines[image.line - 1] = text[: image.column - 1] + new + text[image.end_column - 1 :]
        files[path] = "\n".join(lines).encode("utf-8")
    return wdl.Bundle(files=files, main=bundle.main, origin=bundle.origin, label=bundle.label)


# --- the whole thing ------------------------------------------------------------------------


def _check_log(spec: Mapping[str, Any], plans: Mapping[str, ImagePlan], revision: str) -> str:
    about = spec["wdl"]
    exposed = ", ".join(f"{n} ({i['wdl_input']})" for n, i in spec["inputs"].items())
    lines = [
        "WebMEV Cromwell-mode operation, checked with miniwdl.",
        f"Workflow: {about['workflow_name']} (WDL {about['wdl_version']}) in {spec['workflow']}",
        f"Imports: {', '.join(about['imports']) or 'none'}",
        f"Exposed inputs: {exposed or 'none'}",
        f"Outputs: {', '.join(o['wdl_output'] for o in spec['outputs'].values()) or 'none'}",
        "Images: "
        + ", ".join(f"{p.named} -> {p.tag} ({p.dockerfile or 'present'})" for p in plans.values()),
        f"Revision: {revision}",
    ]
    return "\n".join(lines) + "\n"


def ingest_webmev_cromwell(
    fetched: FetchedSource,
    raw: Mapping[str, Any],
    *,
    added_by: Any,
    report: Progress,
) -> tuple[Operation, bool]:
    """Check, build and record a WebMEV Cromwell-mode operation (see the module's doc)."""
    folder = fetched.folder
    converters = folder / webmev.CONVERTERS_FILENAME
    spec = webmev.convert_webmev(
        raw,
        entrypoint=None,
        converters=converters.read_bytes() if converters.is_file() else None,
        folder_name=fetched.label,
    )
    bundle = webmev_bundle(folder, shown=fetched.source)
    report(f"Checking {bundle.main} and its imports with miniwdl")
    try:
        loaded = wdl.load_workflow(bundle)
        signature = wdl.derive_signature(loaded)
        images = runtime_images(loaded)
    except wdl.WorkflowInvalid as exc:
        raise workflow_invalid(exc) from None
    problems = exposure_problems(spec, signature, loaded.workflow_name)
    if problems:
        raise SpecError(problems, source_name=webmev.SPEC_FILENAME)
    name, version, revision = spec["name"], spec["version"], fetched.revision
    report(f"Revision {revision}")
    existing = Operation.objects.filter(name=name, revision=revision).first()
    target = wdl_bundle_dir(name, revision)
    if existing is not None:
        ran = (existing.spec.get("wdl") or {}).get("images") or {}
        kept = {named: ImagePlan(named, str(tag), None) for named, tag in ran.items()}
        if all(image.named in kept for image in images) and store_bundle(
            rewrite_images(bundle, images, kept), target
        ):
            report(f"Restored its missing workflow files in {target}")
        report(f"{name} at revision {revision[:12]} is already in the catalog")
        return existing, False
    builder = image_builder("wdl")
    try:
        plans = plan_images(
            images,
            folder,
            operation=name,
            label=fetched.label,
            revision=revision,
            is_git=fetched.is_git,
            builder=builder,
        )
    except wdl.WorkflowInvalid as exc:
        raise workflow_invalid(exc) from None
    labels = {
        "org.ferry.operation": name,
        "org.ferry.version": version,
        "org.ferry.revision": revision,
        "org.ferry.source": fetched.source,
    }
    build_log = build_runtime_images(builder, folder, plans, labels=labels, report=report)
    stored = rewrite_images(bundle, images, plans)
    spec["wdl"] = {
        "workflow_name": loaded.workflow_name,
        "wdl_version": loaded.wdl_version,
        "imports": list(loaded.imported_files),
        "files": sorted(stored.files),
        "images": {plan.named: plan.tag for plan in plans.values()},
    }
    if store_bundle(stored, target):
        report(f"Kept the workflow's files in {target}")
    operation, created = _record(
        name=name,
        version=version,
        revision=revision,
        description=spec["description"],
        mode=spec["mode"],
        spec=spec,
        image="",
        source=fetched.source,
        build_log=_stored_log(_check_log(spec, plans, revision) + build_log),
        added_by=added_by,
    )
    if created:
        report(f"Added {name} ({operation.id})")
    return operation, created
