"""A miniwdl task whose container cannot start says why (miniwdl only logs the cause)."""
# ruff: noqa: F811  (the swarm fixture is imported from tests.executors.test_executor_miniwdl)

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

from executors.miniwdl import MiniwdlExecutor
from tests.executors.test_executor_miniwdl import StandInJob, make_executor, run_to_end, swarm  # noqa: F401

NO_SHELL_IMAGE = "ferry/no-shell:latest"

WDL = """version 1.0

workflow wf {
  call greet
  output {
    String said = greet.said
  }
}

task greet {
  command <<<
    echo hello
  >>>
  output {
    String said = read_string(stdout())
  }
  runtime {
    docker: "%s"
  }
}
"""


@pytest.fixture(scope="session")
def no_shell_image(swarm: None) -> str:
    """An image that exists but holds no /bin/sh, so no task command can start in it."""
    client = docker.from_env()
    try:
        client.images.get(NO_SHELL_IMAGE)
    except docker.errors.ImageNotFound:
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name, data in (
                ("Dockerfile", b"FROM scratch\nCOPY README /README\n"),
                ("README", b"no shell in here\n"),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        client.images.build(fileobj=context, custom_context=True, tag=NO_SHELL_IMAGE, rm=True)
    finally:
        client.close()
    return NO_SHELL_IMAGE


def test_a_container_that_cannot_start_reports_the_cause(
    no_shell_image: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "main.wdl").write_text(WDL % no_shell_image)
    executor: MiniwdlExecutor = make_executor(tmp_path / "work")
    job = StandInJob(
        {
            "workflow_dir": str(bundle),
            "main": "main.wdl",
            "workflow_name": "wf",
            "inputs": {},
            "outputs": {"said": {"type": "string"}},
        },
        id=uuid.uuid4(),
    )
    collected = run_to_end(executor, job)
    assert not collected.succeeded
    assert collected.error_message.startswith('task "greet" (call-greet) failed with exit status')
    assert "starting container failed: " in collected.error_message
    assert "/bin/sh" in collected.error_message  # what could not be started
    assert "starting container failed: " in collected.error_detail
