"""Observation/feature (set) inputs: the spec types, their checks and rendering, and jobs that
take a set — named by id from the job's workspace or given inline — run end to end."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from api import services
from api.element_sets.services import element_set_create
from api.models import ElementSet, File, User, Workspace
from operations import runner
from operations.models import Job, Operation, OperationMode
from operations.spec import SpecError, element_ids, parse_spec, render_command, value_errors
from operations.states import TERMINAL, JobStatus
from tests.harness.docker import ensure_busybox_image, ensure_docker
from tests.operations_fixtures import TEST_IMAGE, make_echo_operation

SPEC: dict[str, Any] = {
    "name": "echo-samples",
    "version": "1",
    "command": "echo {{ samples }} > ids.txt && echo {{ reference }} >> ids.txt"
    ' && echo \'{"ids": "ids.txt"}\' > outputs.json',
    "inputs": {
        "samples": {"type": "observation_set"},
        "reference": {
            "type": "feature",
            "required": False,
            "default": {"id": "GAPDH"},
        },
        "genes": {"type": "feature_set", "required": False},
    },
    "outputs": {"ids": {"type": "file", "file_type": "text"}},
}


def make_samples_operation() -> Operation:
    spec = parse_spec(SPEC)
    return Operation.objects.create(
        name=spec["name"],
        version="1",
        revision="samples",
        mode=OperationMode.DOCKER,
        spec=spec,
        image=TEST_IMAGE,
        source="tests",
    )


# --- the spec ------------------------------------------------------------------------------------


def test_spec_types_normalize_and_check() -> None:
    spec = parse_spec(SPEC)
    assert spec["inputs"]["samples"] == {
        "type": "observation_set",
        "description": "",
        "required": True,
        "default": None,
    }
    assert spec["inputs"]["reference"]["default"] == {"id": "GAPDH", "attributes": {}}
    with pytest.raises(SpecError) as refused:
        parse_spec(
            {
                **SPEC,
                "inputs": {
                    **SPEC["inputs"],
                    "samples": {"type": "observation_set", "many": True},
                    "genes": {
                        "type": "feature_set",
                        "required": False,
                        "default": {"elements": [{"id": "a"}, {"id": "a"}]},
                    },
                },
            }
        )
    paths = {e["path"]: e["message"] for e in refused.value.errors}
    assert "$.inputs.samples.many" in paths
    assert "elements[1].id" in paths["$.inputs.genes.default"]
    with pytest.raises(SpecError) as in_list:
        parse_spec({**SPEC, "inputs": {"samples": {"type": "list", "items": {"type": "feature"}}}})
    assert "$.inputs.samples.items.type" in {e["path"] for e in in_list.value.errors}


@pytest.mark.parametrize(
    ("kind", "value", "fits"),
    [
        ("observation_set", {"elements": [{"id": "a"}]}, True),
        ("observation_set", {"elements": []}, True),
        ("observation_set", {"elements": [{"id": "a"}], "extra": 1}, False),
        ("observation_set", ["a", "b"], False),
        ("observation_set", "a,b", False),
        ("feature_set", {"elements": [{"id": "a"}, {"id": "a"}]}, False),
        ("feature", {"id": "TP53"}, True),
        ("feature", {"id": "TP53", "elements": []}, False),
        ("observation", "s1", False),
        ("observation", {"id": "bad id!"}, False),
    ],
)
def test_value_errors(kind: str, value: Any, fits: bool) -> None:
    assert (value_errors({"type": kind}, value) == []) is fits


def test_rendering_is_the_ids_as_one_argument() -> None:
    spec = parse_spec(SPEC)
    samples = {"elements": [{"id": "s1", "attributes": {}}, {"id": "s-2", "attributes": {}}]}
    assert element_ids(samples) == ["s1", "s-2"]
    assert element_ids({"id": "TP53", "attributes": {}}) == ["TP53"]
    command = render_command(spec, {"samples": samples})
    out = subprocess.run(
        ["/bin/sh", "-c", command + " && cat ids.txt"],
        capture_output=True,
        check=True,
        text=True,
        cwd="/tmp",
    )
    assert out.stdout == "s1,s-2\nGAPDH\n"
    assert render_command(spec, {"samples": {"elements": []}}).startswith("echo '' > ids.txt")
    with pytest.raises(ValueError, match="bytes long"):
        render_command(
            spec, {"samples": {"elements": [{"id": f"g{i:09d}"} for i in range(15_000)]}}
        )


# --- jobs ----------------------------------------------------------------------------------------


def post_job(client: APIClient, operation: Operation, workspace: Workspace, inputs: Any) -> Any:
    return client.post(
        "/api/jobs/",
        {"operation": str(operation.pk), "workspace": str(workspace.pk), "inputs": inputs},
        format="json",
    )


@pytest.mark.django_db
def test_a_named_set_is_stored_inline_with_its_provenance(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    operation = make_samples_operation()
    samples = element_set_create(
        user=users["owner"],
        workspace=workspace,
        kind="observation",
        name="Treated",
        elements=[
            {"id": "s1"},
            {"id": "s2", "attributes": {"d": {"attribute_type": "Integer", "value": 3}}},
        ],
    )
    response = post_job(
        client_for("editor"), operation, workspace, {"samples": {"set": str(samples.pk)}}
    )
    assert response.status_code == 201, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.inputs["samples"] == {
        "elements": samples.elements,
        "from_set": {"id": str(samples.pk), "name": "Treated"},
    }
    assert "echo s1,s2 > ids.txt && echo GAPDH >> ids.txt" in job.run_spec["command"]
    # Changing the set later does not change what the job ran with.
    samples.elements = [{"id": "other", "attributes": {}}]
    samples.save()
    job.refresh_from_db()
    assert [e["id"] for e in job.inputs["samples"]["elements"]] == ["s1", "s2"]
    # Inline values are taken too (normalized).
    inline = post_job(
        client_for("owner"),
        operation,
        workspace,
        {"samples": {"elements": [{"id": " a b "}]}, "reference": {"id": "ACTB"}},
    )
    assert inline.status_code == 201, inline.json()
    created = Job.objects.get(pk=inline.json()["id"])
    assert created.inputs["samples"] == {"elements": [{"id": "a_b", "attributes": {}}]}
    assert created.inputs["reference"] == {"id": "ACTB", "attributes": {}}


@pytest.mark.django_db
def test_sets_that_cannot_be_used_are_400_naming_the_input(
    client_for: Callable[[str], APIClient], workspace: Workspace, users: dict[str, User]
) -> None:
    operation = make_samples_operation()
    # The owner can read this other workspace's set, but a job takes sets of its own workspace.
    elsewhere = services.workspace_create(user=users["owner"], name="Elsewhere")
    theirs = services.workspace_create(user=users["other"], name="Theirs")
    cases: list[tuple[Any, str, str]] = []
    for ws, name in ((elsewhere, "Elsewhere"), (theirs, "Hidden")):
        found = element_set_create(
            user=users["owner" if ws == elsewhere else "other"],
            workspace=ws,
            kind="observation",
            name=name,
            elements=[{"id": "secret1"}],
        )
        cases.append(({"set": str(found.pk)}, "inputs.samples", "No set"))
    genes = element_set_create(
        user=users["owner"], workspace=workspace, kind="feature", name="G", elements=[{"id": "g"}]
    )
    cases += [
        ({"set": str(genes.pk)}, "inputs.samples", "holds features"),
        ({"set": "not-a-uuid"}, "inputs.samples", "No set"),
        ({"set": {"$ne": None}}, "inputs.samples", "No set in"),
        ({"set": "x" * 100_000}, "inputs.samples", "No set in"),
        ({"set": str(genes.pk), "elements": []}, "inputs.samples", "alone"),
        ({"elements": [{"id": "a"}, {"id": "a"}]}, "inputs.samples.elements[1].id", "Duplicate"),
        (
            {"elements": [{"id": "a", "junk": {"deep": [1]}}]},
            "inputs.samples.elements[0]",
            "Unknown key",
        ),
        ("s1,s2", "inputs.samples", "Must be an object"),
        (
            {"elements": [{"id": f"g{i}"} for i in range(100_000)]},
            "inputs.samples.elements",
            "at most",
        ),
    ]
    client = client_for("owner")
    for value, path, words in cases:
        response = post_job(client, operation, workspace, {"samples": value})
        assert response.status_code == 400, (
            value if not isinstance(value, dict) else path,
            response.json(),
        )
        found_details = response.json()["details"]
        assert path in found_details, found_details
        assert any(words in m for m in found_details[path]), found_details
        assert "secret1" not in response.content.decode()
        assert len(response.content) < 20_000  # hostile values are not echoed back whole
    element = post_job(
        client,
        operation,
        workspace,
        {"samples": {"elements": []}, "reference": {"set": str(genes.pk)}},
    )
    assert element.status_code == 400
    assert "inputs.reference" in element.json()["details"]
    too_long = post_job(
        client,
        operation,
        workspace,
        {"samples": {"elements": [{"id": f"g{i:09d}"} for i in range(15_000)]}},
    )
    assert too_long.status_code == 400
    assert "bytes long" in too_long.json()["message"]
    assert not Job.objects.exists()
    # A viewer can read the set but can't run jobs in the workspace.
    mine = element_set_create(
        user=users["owner"], workspace=workspace, kind="observation", name="Mine", elements=[]
    )
    viewer = post_job(
        client_for("viewer"), operation, workspace, {"samples": {"set": str(mine.pk)}}
    )
    assert viewer.status_code == 403
    assert ElementSet.objects.count() == 4


def wait_terminal(job_id: str, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        runner.poll_cycle()
        job = Job.objects.get(pk=job_id)
        if JobStatus(job.status) in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.mark.django_db
def test_a_job_with_a_set_runs_end_to_end(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    users: dict[str, User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    operation = make_samples_operation()
    samples = element_set_create(
        user=users["editor"],
        workspace=workspace,
        kind="observation",
        name="Cohort",
        elements=[{"id": "s1"}, {"id": "patient:7"}, {"id": "x.y-z"}],
    )
    client = client_for("editor")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_job(
            client,
            operation,
            workspace,
            {"samples": {"set": str(samples.pk)}, "reference": {"id": "TP53"}},
        )
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    job = wait_terminal(job_id)
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.error_message, job.error_detail)
    result = File.objects.get(pk=job.outputs["ids"])
    body = client.get(f"/api/files/{result.pk}/download/")
    assert b"".join(body.streaming_content).decode() == "s1,patient:7,x.y-z\nTP53\n"  # type: ignore[attr-defined]
    detail = client.get(f"/api/jobs/{job_id}/").json()
    assert detail["inputs"]["samples"]["from_set"] == {"id": str(samples.pk), "name": "Cohort"}

    # A set as large as a command line holds (just under 128 KiB once rendered) runs too.
    ids = [f"gene{i:07d}" for i in range(10_700)]
    large = element_set_create(
        user=users["editor"],
        workspace=workspace,
        kind="observation",
        name="Large",
        elements=[{"id": i} for i in ids],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_job(client, operation, workspace, {"samples": {"set": str(large.pk)}})
    assert response.status_code == 201, response.json()
    job = wait_terminal(response.json()["id"])
    assert len(job.run_spec["command"]) > 120_000
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.error_message, job.error_detail)
    body = client.get(f"/api/files/{job.outputs['ids']}/download/")
    text = b"".join(body.streaming_content).decode()  # type: ignore[attr-defined]
    assert text == ",".join(ids) + "\nGAPDH\n"


@pytest.mark.django_db
def test_any_command_too_long_for_a_command_line_is_400(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    """Not only sets: any value that makes the command longer than Linux passes as one argument
    is refused at creation instead of failing in the engine."""
    operation = make_echo_operation()
    client = client_for("owner")
    refused = post_job(client, operation, workspace, {"text": "a" * 140_000})
    assert refused.status_code == 400
    assert "inputs" in refused.json()["details"]
    assert "at most 131071" in refused.json()["message"]
    assert post_job(client, operation, workspace, {"text": "a" * 120_000}).status_code == 201
