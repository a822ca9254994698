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


def make_wdl_operation(folder: Any) -> Operation:
    """A WDL operation added from a fixture folder by Ferry's own ingestion (the caller points
    ``settings.FERRY_VAR_DIR`` at a temporary folder, where the workflow files are kept)."""
    from operations.ingestion import ingest_operation

    operation, _ = ingest_operation(str(folder))
    return operation
