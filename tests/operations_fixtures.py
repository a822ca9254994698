"""Operation records for tests, written in Ferry's normalized spec form."""

from __future__ import annotations

from typing import Any

from operations.models import Operation, OperationMode

TEST_IMAGE = "ferry/busybox:latest"


def make_operation(
    name: str,
    command: str,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
    image: str = TEST_IMAGE,
) -> Operation:
    spec = {
        "name": name,
        "version": "1",
        "description": "",
        "mode": "docker",
        "command": command,
        "resources": resources or {},
        "inputs": inputs or {},
        "outputs": outputs or {},
    }
    return Operation.objects.create(
        name=name,
        version="1",
        revision=name,
        mode=OperationMode.DOCKER,
        spec=spec,
        image=image,
        source="tests",
    )


def make_echo_operation() -> Operation:
    outputs_json = """'{"said": "said.txt"}'"""
    return make_operation(
        "echo",
        f"echo {{{{ text }}}} > said.txt && echo {outputs_json} > outputs.json",
        inputs={"text": {"type": "string", "required": True, "description": ""}},
        outputs={"said": {"type": "file", "file_type": "text", "description": ""}},
    )


def make_wdl_operation(folder: Any, store_in: Any, name: str | None = None) -> Operation:
    """A WDL operation from a fixture folder (its bundle copied to ``store_in``), the way
    ingestion records one: the derived signature plus where the bundle is kept."""
    from pathlib import Path

    import wdl

    bundle = wdl.bundle_from_folder(Path(folder))
    loaded = wdl.load_workflow(bundle)
    signature = wdl.workflow_signature(loaded)
    target = Path(store_in) / (name or loaded.workflow_name)
    wdl.write_bundle(bundle, target)
    op_name = (name or loaded.workflow_name).replace("_", "-").lower()
    spec = {
        "name": op_name,
        "version": "1",
        "description": signature.get("description", ""),
        "mode": "wdl",
        "workflow": bundle.main,
        "workflow_name": signature["workflow_name"],
        "bundle_path": str(target),
        "resources": {},
        "inputs": signature["inputs"],
        "outputs": signature["outputs"],
    }
    return Operation.objects.create(
        name=op_name,
        version="1",
        revision=wdl.bundle_digest(bundle),
        mode=OperationMode.WDL,
        spec=spec,
        source=str(folder),
    )
