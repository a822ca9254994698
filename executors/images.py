"""Building an operation's image on a Docker engine (the build hook of executors whose runs use
that engine's image store: :meth:`executors.base.Executor.build_image`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from .base import ExecutorUnavailable, ImageBuild, ImageBuildFailed, connection_problem

BUILD_TIMEOUT_S = 3600  # one build step may be silent for long (compiling, downloading)


def build_client(base_url: str | None) -> docker.APIClient:
    """A Docker API client for builds (long timeout); ExecutorUnavailable if the engine at
    ``base_url`` (default: DOCKER_HOST or the local socket) doesn't answer."""
    try:
        if base_url:
            client = docker.APIClient(base_url=base_url, timeout=BUILD_TIMEOUT_S)
        else:
            client = docker.from_env(timeout=BUILD_TIMEOUT_S).api
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ExecutorUnavailable(
            f"the Docker engine can't be reached: {connection_problem(exc)}"
        ) from None
    return client


class _BuildLog:
    """The build's output as it streams: the text kept, the current step, the first error."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.lines: list[str] = []
        self.step = ""
        self.error = ""

    def read(self, chunk: dict[str, Any]) -> None:
        if "stream" in chunk:
            text = str(chunk["stream"])
            self.lines.append(text)
            for line in text.splitlines():
                if line.startswith("Step "):
                    self.step = line.strip()
                    self.report(self.step)
        elif "status" in chunk and not chunk.get("progress"):
            self.lines.append(f"{chunk['status']}\n")  # pulls: the statuses, not progress bars
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.fail(str(chunk.get("error") or detail.get("message") or "unknown error"))

    def fail(self, error: str) -> None:
        self.error = error
        self.lines.append(f"ERROR: {error}\n")

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _stream(client: docker.APIClient, build: ImageBuild, log: _BuildLog) -> None:
    chunks: Iterator[dict[str, Any]] = client.build(
        path=str(build.context),
        dockerfile=Path(build.dockerfile).name,
        tag=build.tag,
        rm=True,
        forcerm=True,
        decode=True,
        pull=False,
        labels=build.labels,
    )
    for chunk in chunks:
        log.read(chunk)
        if log.error:
            return


def local_image_labels(client: docker.APIClient, tag: str) -> dict[str, str] | None:
    """The labels of the local engine's image ``tag``; None when it has no such image."""
    try:
        attrs = client.inspect_image(tag)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ExecutorUnavailable(
            f"the Docker engine can't say whether {tag} exists: {connection_problem(exc)}"
        ) from None
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def build_local_image(client: docker.APIClient, build: ImageBuild) -> str:
    """Build on the engine ``client`` talks to, streaming steps to ``build.report``; return
    the build log. ImageBuildFailed (with the log) when it fails."""
    log = _BuildLog(build.report)
    try:
        _stream(client, build, log)
    except docker.errors.APIError as exc:
        log.fail(str(exc.explanation or exc))
    except (docker.errors.DockerException, requests.RequestException) as exc:
        log.fail(f"the Docker engine failed during the build: {exc}")
    if not log.error:
        try:
            client.inspect_image(build.tag)  # type: ignore[no-untyped-call]  # untyped in types-docker
        except docker.errors.DockerException as exc:
            log.error = f"the build reported no error, but {build.tag} does not exist: {exc}"
    if log.error:
        raise ImageBuildFailed(build.tag, log.step, log.error, log.text)
    return log.text
