"""Ingestion builds an operation's image through the executor that runs its mode: with the
executor's declared build hook, pushed when it declares ``pushes_images``, refused with a
clear 503 when it builds none."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.errors
import pytest

from executors.docker import DockerExecutor
from operations.examples import BASE_IMAGE, ensure_base_image
from operations.ingestion import IngestionError, ingest_operation
from operations.models import Operation

pytestmark = pytest.mark.django_db

PREFIX = "test-image-builds-"


class PushingDockerExecutor(DockerExecutor):
    """A Docker executor for an engine that pulls from a registry: it records its pushes."""

    pushes_images = True
    pushed: ClassVar[list[str]] = []

    def push_image(self, tag: str) -> str:
        self.pushed.append(tag)
        return f"pushed {tag}\n"


def _operation_folder(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    spec = {
        "name": PREFIX + name,
        "version": "1.0.0",
        "description": "Says hi.",
        "command": "echo hi",
        "inputs": {},
        "outputs": {},
    }
    (folder / "operation.json").write_text(json.dumps(spec))
    (folder / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo built\n")
    return folder


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    ensure_base_image(client)
    yield client
    for image in client.images.list(filters={"label": "org.ferry.operation"}):
        if image.labels.get("org.ferry.operation", "").startswith(PREFIX):
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)
    client.close()


def _route_docker_to(settings: Any, alias: str, backend: str, options: dict[str, Any]) -> None:
    settings.EXECUTORS = {**settings.EXECUTORS, alias: {"BACKEND": backend, "OPTIONS": options}}
    settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "docker": alias}


def test_an_executor_that_builds_no_images_is_refused_clearly(
    settings: Any, tmp_path: Path
) -> None:
    _route_docker_to(settings, "dummy-runs", "executors.dummy.DummyExecutor", {})
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(_operation_folder(tmp_path / "op", "refused")))
    assert (caught.value.code, caught.value.status_code) == ("no_image_builder", 503)
    assert "dummy-runs" in caught.value.message
    assert Operation.objects.count() == 0


def test_an_executor_that_pushes_gets_the_built_image_pushed(
    settings: Any, tmp_path: Path, engine: docker.DockerClient
) -> None:
    options = {**settings.EXECUTORS["local-docker"]["OPTIONS"]}
    backend = f"{__name__}.PushingDockerExecutor"
    _route_docker_to(settings, "pushing", backend, options)
    PushingDockerExecutor.pushed.clear()
    messages: list[str] = []

    operation, created = ingest_operation(
        str(_operation_folder(tmp_path / "op", "pushed")), progress=messages.append
    )

    assert created
    assert PushingDockerExecutor.pushed == [operation.image]
    assert f"Pushing {operation.image}" in messages
    assert operation.build_log.endswith(f"pushed {operation.image}\n")
    assert engine.images.get(operation.image).labels["org.ferry.operation"] == PREFIX + "pushed"


def test_an_unreachable_engine_is_a_503(settings: Any, tmp_path: Path) -> None:
    options = {
        **settings.EXECUTORS["local-docker"]["OPTIONS"],
        "base_url": f"unix://{tmp_path}/no-docker.sock",
    }
    _route_docker_to(settings, "nowhere", "executors.docker.DockerExecutor", options)
    with pytest.raises(IngestionError) as caught:
        ingest_operation(str(_operation_folder(tmp_path / "op", "nowhere")))
    assert (caught.value.code, caught.value.status_code) == ("docker_unavailable", 503)
    assert "socket does not exist" in caught.value.message
