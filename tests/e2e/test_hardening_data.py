"""Data that must not leak or disappear, tried by hostile users:

- a String input naming another user's stored object is never staged, localized, cleaned up
  or accepted as an output file;
- imports never reach another workspace's objects (removed members, strangers), and a shared
  import location can't overlap workspace storage;
- once a direct upload is complete, no URL Ferry handed out changes the stored bytes.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import Credential, File, FileStatus, Membership, User, Workspace
from api.services import member_remove, workspace_create
from api.storage import local_path
from executors.miniwdl import OUTPUTS_JSON, RUN_SUBDIR, MiniwdlExecutor
from operations import runner
from operations.models import Job, Operation
from operations.states import JobStatus
from tests.e2e.test_jobs import run_job
from tests.e2e.test_wdl_cromwell_jobs import (  # noqa: F401 - fixtures
    EXECUTOR,
    FIXTURES,
    RUN_TIMEOUT_S,
    cromwell,
    keys_under,
    read_object,
    server_record,
    site_bucket,
    upload,
    var_dir,
)
from tests.operations_fixtures import make_wdl_operation
from tests.storage.test_direct_transfers import registered  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from tests.harness.buckets import S3Server
    from tests.harness.cromwell import CromwellServer


# ----------------------------------------------------------------- 1. String inputs are strings


@pytest.mark.slow
@pytest.mark.django_db
def test_a_string_input_naming_another_users_object_survives_the_job(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    workspace: Workspace,
    server_record: dict[str, Any],  # noqa: F811
    cromwell: CromwellServer,  # noqa: F811
    site_bucket: str,  # noqa: F811
    moto_server: S3Server,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """User B runs a Cromwell job whose String input is the URI of user A's stored file: the
    job's clean-up used to delete every input URI it had not staged from a file input."""
    victim = File.objects.get(pk=upload(client_for("owner"), workspace, "a.txt", b"A's data\n"))
    assert victim.storage_uri.startswith(f"s3://{site_bucket}/")
    attacker = client_for("other")
    own = workspace_create(user=users["other"], name="B's")
    table = upload(attacker, own, "b.txt", b"1\n2\n")
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    body = {
        "operation": str(operation.pk),
        "workspace": str(own.pk),
        "inputs": {"tables": [table], "label": victim.storage_uri},
        "executor": EXECUTOR,
    }
    created = run_job(attacker, body, django_capture_on_commit_callbacks)
    job = Job.objects.get(pk=created["id"])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, f"job still {job.status}"
        runner.poll_cycle()
        job.refresh_from_db()
        time.sleep(0.3)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail)
    assert read_object(moto_server, victim.storage_uri) == b"A's data\n"
    assert job.run_spec["staged"]
    assert all(
        uri.startswith(f"s3://{cromwell.bucket}/ferry-inputs/{job.pk}/")
        for uri in job.run_spec["staged"]
    )
    # Ferry's own copy of B's input was removed.
    assert keys_under(moto_server, cromwell.bucket, f"ferry-inputs/{job.pk}/") == []


@pytest.mark.django_db
def test_cleanup_of_a_run_prepared_before_the_fix_spares_what_ferry_did_not_stage(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    workspace: Workspace,
    make_file: Callable[..., File],
) -> None:
    """A job prepared by an older version may list a String input's URI as "staged": clean-up
    deletes only objects under the job's own staging prefix that no File stands for."""
    from operations.wdl_runs import remove_staged_inputs

    victim = make_file(workspace, b"keep me\n")
    path = Path(local_path(victim.storage_uri))
    assert path.is_file()
    job = Job.objects.create(
        workspace=workspace,
        owner=users["other"],
        executor="cromwell:old",
        status=JobStatus.FAILED,
        run_spec={"mode": "wdl", "staged": [victim.storage_uri]},
    )
    remove_staged_inputs(job, "s3://cromwell-bucket/in/")
    remove_staged_inputs(job, None)
    assert path.read_bytes() == b"keep me\n"


def test_miniwdl_outputs_never_name_a_host_file_given_as_a_string_input(tmp_path: Path) -> None:
    """A run without file inputs (``input_files`` empty) whose String input names a host file
    can't return that file as an output: only the run's own files and its listed inputs."""
    victim = tmp_path / "someone-elses.txt"
    victim.write_text("private\n")
    executor = MiniwdlExecutor(
        "test-miniwdl", {"work_root": str(tmp_path / "work"), "defaults": {"timeout_s": 60}}
    )

    class StandIn:
        id = uuid.uuid4()
        run_spec = {
            "workflow_name": "leak",
            "inputs": {"leak.path": str(victim)},
            "input_files": [],
            "outputs": {"f": {"type": "file", "many": False}},
        }

    job = StandIn()
    run_root = executor.run_dir(job) / RUN_SUBDIR
    run_root.mkdir(parents=True)
    (run_root / OUTPUTS_JSON).write_text(json.dumps({"leak.f": str(victim)}))
    collected = executor.collect(job)
    assert not collected.succeeded
    assert "outside the run" in collected.error_message


@pytest.mark.slow
@pytest.mark.django_db
def test_a_docker_jobs_string_input_naming_a_stored_file_is_only_text(
    client_for: Callable[[str], APIClient],
    users: dict[str, User],
    workspace: Workspace,
    make_file: Callable[..., File],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """(No bug found here; kept as a check.) The Docker path mounts and fetches File inputs
    only: a String naming A's stored file is not mounted, so the container can't read it."""
    from tests.e2e.test_jobs import wait_terminal
    from tests.harness.docker import ensure_busybox_image, ensure_docker
    from tests.operations_fixtures import TEST_IMAGE, make_operation

    ensure_docker()
    ensure_busybox_image(TEST_IMAGE)
    victim = make_file(workspace, b"A's secret\n")
    path = local_path(victim.storage_uri)
    operation = make_operation(
        "peek",
        '(cat {{ path }} || echo unreadable) > said.txt; echo \'{"said": "said.txt"}\' > outputs.json',
        inputs={"path": {"type": "string", "required": True, "description": ""}},
        outputs={"said": {"type": "file", "file_type": "text", "description": ""}},
    )
    own = workspace_create(user=users["other"], name="B's")
    created = run_job(
        client_for("other"),
        {"operation": str(operation.pk), "workspace": str(own.pk), "inputs": {"path": path}},
        django_capture_on_commit_callbacks,
    )
    done = wait_terminal(created["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_message, done.error_detail)
    assert not done.run_spec.get("mounts")
    said = File.objects.get(pk=done.outputs["said"])
    assert Path(local_path(said.storage_uri)).read_bytes() == b"unreadable\n"


# ------------------------------------------------------- 2. imports reach no other workspace


def _import(client: APIClient, workspace: Workspace, uri: str) -> Any:
    return client.post(
        "/api/files/import/", {"workspace": str(workspace.pk), "uri": uri}, format="json"
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_removed_viewer_and_stranger_cannot_import_a_workspaces_files_via_a_shared_location(
    registered: Callable[..., Credential],  # noqa: F811
    users: dict[str, User],
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """A workspace that stores its files in a location marked shared (configured before such
    overlaps were refused): a viewer learns a file's URI, is removed, and imports it into a
    workspace of their own; a stranger who learnt the URI tries too. Both are refused."""
    bucket = f"lab-{uuid.uuid4().hex[:8]}"
    registered("lab", bucket, shared=True)
    Workspace.objects.filter(pk=workspace.pk).update(storage_location=f"s3://{bucket}/data/ws/")
    owner = client_for("owner")
    created = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=secret.csv",
        b"a,b\n1,2\n",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert created.status_code == 201, created.content
    uri = File.objects.get(pk=created.json()["id"]).storage_uri
    assert uri.startswith(f"s3://{bucket}/data/ws/workspaces/{workspace.pk}/")

    # A member who may read the workspace may register its object elsewhere.
    viewer_ws = workspace_create(user=users["viewer"], name="Viewer's own")
    assert _import(client_for("viewer"), viewer_ws, uri).status_code == 201
    File.objects.filter(workspace=viewer_ws).delete()
    # Removed: no more.
    membership = Membership.objects.get(workspace=workspace, user=users["viewer"])
    member_remove(membership=membership)
    removed = _import(client_for("viewer"), viewer_ws, uri)
    assert removed.status_code == 400, removed.content
    assert removed.json()["code"] == "forbidden"
    assert "uri" in removed.json()["details"]
    stranger_ws = workspace_create(user=users["other"], name="Stranger's")
    stranger = _import(client_for("other"), stranger_ws, uri)
    assert stranger.status_code == 400
    assert stranger.json()["code"] == "forbidden"
    assert not File.objects.filter(workspace__in=[viewer_ws, stranger_ws]).exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_managed_file_outside_any_workspace_prefix_is_not_importable_by_strangers(
    registered: Callable[..., Credential],  # noqa: F811
    seaweedfs: S3Server,
    users: dict[str, User],
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """An object a managed File of another workspace stands for, wherever its key is (here a
    job's result relocated under a shared prefix by an older version), is not importable; a
    shared object imported by someone else (unmanaged) still is."""
    bucket = f"pub-{uuid.uuid4().hex[:8]}"
    registered("public", bucket, shared=True)
    s3 = seaweedfs.boto3_client()
    s3.put_object(Bucket=bucket, Key="data/results/out.txt", Body=b"A's result\n")
    s3.put_object(Bucket=bucket, Key="data/public/ref.fa", Body=b">ref\nACGT\n")
    managed_uri = f"s3://{bucket}/data/results/out.txt"
    File.objects.create(
        workspace=workspace,
        owner=users["owner"],
        name="out.txt",
        size=11,
        status=FileStatus.READY,
        storage_uri=managed_uri,
        managed=True,
    )
    assert (
        _import(client_for("owner"), workspace, f"s3://{bucket}/data/public/ref.fa").status_code
        == 201
    )
    stranger_ws = workspace_create(user=users["other"], name="Stranger's")
    stranger = client_for("other")
    refused = _import(stranger, stranger_ws, managed_uri)
    assert refused.status_code == 400
    assert refused.json()["code"] == "forbidden"
    # An engine's folder of A's job (Cromwell: <workflow>/<workflow id = job id>/call-…).
    job = Job.objects.create(workspace=workspace, owner=users["owner"], status=JobStatus.RUNNING)
    engine_key = f"data/count_lines/{job.pk}/call-summarize/execution/summary.txt"
    s3.put_object(Bucket=bucket, Key=engine_key, Body=b"A's intermediate\n")
    engine = _import(stranger, stranger_ws, f"s3://{bucket}/{engine_key}")
    assert engine.status_code == 400
    assert engine.json()["code"] == "forbidden"
    assert (
        _import(client_for("editor"), workspace, f"s3://{bucket}/{engine_key}").status_code == 201
    )
    assert _import(stranger, stranger_ws, f"s3://{bucket}/data/public/ref.fa").status_code == 201


@pytest.mark.slow
@pytest.mark.django_db
def test_shared_import_locations_and_workspace_storage_never_overlap(
    settings: Any,
    seaweedfs: S3Server,
    registered: Callable[..., Credential],  # noqa: F811
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """Refused when configured, with the field named: a shared credential over the site's
    storage or a workspace's location, a workspace location over a shared one (staff too), a
    credential both shared and for workspace storage."""
    staff = client_for("staff")
    bucket = f"mix-{uuid.uuid4().hex[:8]}"
    registered("store", bucket, shared=False, workspace_storage=True)  # s3://<bucket>/data
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/site"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(seaweedfs.config()).items() if v is not None}
    }
    connection = {"endpoint_url": seaweedfs.endpoint_url, "region": "us-east-1"}
    secret = {
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
    }

    def create(name: str, location: str, **flags: bool) -> Any:
        body = {
            "name": name,
            "kind": "s3",
            "config": {"location": location, **connection, **flags},
            "secret": secret,
        }
        return staff.post("/api/credentials/", body, format="json")

    for location, over in (
        (f"s3://{bucket}/", "FERRY_STORAGE_LOCATION"),  # holds the site's storage
        (f"s3://{bucket}/site/public", "FERRY_STORAGE_LOCATION"),  # inside it
        (f"s3://{bucket}/data/x", "credential store"),  # inside a workspace_storage one
    ):
        refused = create("pub", location, shared=True)
        assert refused.status_code == 400, (location, refused.content)
        assert "config.location" in refused.json()["details"], refused.json()
        assert over in refused.json()["message"]
    both = create("both", f"s3://{bucket}/both", shared=True, workspace_storage=True)
    assert both.status_code == 400
    assert "config.shared" in both.json()["details"]

    # A shared prefix apart from all of them is fine; workspaces can't be stored there.
    public = create("pub", f"s3://{bucket}/public", shared=True)
    assert public.status_code == 201, public.content
    aimed = staff.patch(
        f"/api/workspaces/{workspace.pk}/",
        {"storage_location": f"s3://{bucket}/public/ws"},
        format="json",
    )
    assert aimed.status_code == 400
    assert "storage_location" in aimed.json()["details"]
    owner_aimed = client_for("owner").patch(
        f"/api/workspaces/{workspace.pk}/",
        {"storage_location": f"s3://{bucket}/public/ws"},
        format="json",
    )
    assert owner_aimed.status_code == 400
    # A workspace stored somewhere: a shared credential over it, or made shared later, is refused.
    chosen = client_for("owner").patch(
        f"/api/workspaces/{workspace.pk}/",
        {"storage_location": f"s3://{bucket}/data/ws"},
        format="json",
    )
    assert chosen.status_code == 200, chosen.content
    store = Credential.objects.get(name="store")
    made_shared = staff.patch(
        f"/api/credentials/{store.pk}/",
        {"config": {**store.config, "workspace_storage": False, "shared": True}},
        format="json",
    )
    assert made_shared.status_code == 400, made_shared.content
    assert "config.location" in made_shared.json()["details"]
    assert "storage_location" in made_shared.json()["message"]
    # And a workspace_storage credential over a shared one.
    overlapping = create("store2", f"s3://{bucket}/public/sub", workspace_storage=True)
    assert overlapping.status_code == 400
    assert "config.location" in overlapping.json()["details"]


def test_import_locations_overlapping_the_site_storage_fail_the_system_check(
    settings: Any,
) -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.FERRY_STORAGE_LOCATION = "s3://site-bucket/ferry"
    settings.FERRY_IMPORT_LOCATIONS = ["s3://other-bucket/", "s3://site-bucket/"]
    with pytest.raises(SystemCheckError, match=r"ferry\.E020"):
        call_command("check")
    settings.FERRY_IMPORT_LOCATIONS = ["s3://other-bucket/", "s3://site-bucket/public/"]
    call_command("check")  # apart: fine


@pytest.mark.django_db
def test_storage_uri_operation_source_and_build_log_are_for_staff_only(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    make_file: Callable[..., File],
) -> None:
    from tests.operations_fixtures import make_echo_operation

    file = make_file(workspace)
    operation = make_echo_operation()
    Operation.objects.filter(pk=operation.pk).update(
        source="/srv/private/echo", build_log="Step 1/3 : FROM secret-registry"
    )
    operation.refresh_from_db()
    for role in ("owner", "viewer"):
        client = client_for(role)
        shown = client.get(f"/api/files/{file.pk}/").json()
        assert shown["storage_uri"] == "", role
        listed = client.get(f"/api/files/?workspace={workspace.pk}").json()["results"]
        assert all(item["storage_uri"] == "" for item in listed)
        op = client.get(f"/api/operations/{operation.pk}/").json()
        assert op["source"] == ""
        assert op["build_log"] == ""
        ops = client.get("/api/operations/").json()["results"]
        assert all(item["source"] == "" for item in ops)
    # Nested too: a job's output files.
    job = Job.objects.create(
        operation=operation, workspace=workspace, owner=file.owner, status=JobStatus.SUCCEEDED
    )
    File.objects.filter(pk=file.pk).update(produced_by=job)
    shown_job = client_for("owner").get(f"/api/jobs/{job.pk}/").json()
    assert [f["storage_uri"] for f in shown_job["output_files"]] == [""]
    staff = client_for("staff")
    assert staff.get(f"/api/files/{file.pk}/").json()["storage_uri"] == file.storage_uri
    assert staff.get(f"/api/jobs/{job.pk}/").json()["output_files"][0]["storage_uri"]
    op = staff.get(f"/api/operations/{operation.pk}/").json()
    assert op["source"] == operation.source
    assert op["build_log"].startswith("Step 1/3")


# --------------------------------------------- 3. a completed upload's URLs change nothing


def _site_on(settings: Any, server: Any, scheme: str, bucket: str) -> None:
    settings.FERRY_STORAGE_LOCATION = f"{scheme}://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        scheme: {k: v for k, v in asdict(server.config()).items() if v is not None}
    }


def _served(client: APIClient, file_id: str) -> bytes:
    response = client.get(f"/api/files/{file_id}/download/")
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_signed_put_after_completion_changes_nothing_on_seaweedfs(
    settings: Any,
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """No sha256 declared, so the signed PUT pins only the length: after completion the same
    URL still accepts other bytes of that length (SeaweedFS checks the signature and expiry,
    both still good), and they must not reach the stored file."""
    from api.storage import transfers

    bucket = f"site-{uuid.uuid4().hex[:8]}"
    seaweedfs.boto3_client().create_bucket(Bucket=bucket)
    _site_on(settings, seaweedfs, "s3", bucket)
    owner = client_for("owner")
    data, other = b"the real content\n", b"SWAPPED CONTENT!\n"
    started = owner.post(
        "/api/files/uploads/",
        {"workspace": str(workspace.pk), "name": "r.txt", "size": len(data)},
        format="json",
    ).json()
    upload = started["upload"]
    put = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text
    file_id = started["file"]["id"]
    done = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert done.status_code == 200, done.content

    late = requests.put(upload["url"], data=other, headers=upload["headers"], timeout=30)
    assert late.status_code in (200, 403), late.text  # accepted (to a staging key) or refused
    assert _served(owner, file_id) == data
    stored = File.objects.get(pk=file_id).storage_uri
    assert stored.startswith(f"s3://{bucket}/ferry/workspaces/{workspace.pk}/files/{file_id}/")
    s3 = seaweedfs.boto3_client()
    assert s3.get_object(Bucket=bucket, Key=stored.split("/", 3)[3])["Body"].read() == data
    redirect = owner.get(f"/api/files/{file_id}/download/?redirect=1")
    assert requests.get(redirect["Location"], timeout=30).content == data
    # What the late PUT left at the staging key is swept once every URL for it has expired.
    later = timezone.now() + datetime.timedelta(seconds=settings.FERRY_SIGNED_URL_EXPIRES_S + 61)
    transfers.pending_uploads_expire(now=later)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [stored.split("/", 3)[3]]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_resumable_session_after_completion_changes_nothing_on_gcs(
    settings: Any,
    gcs_emulator: Any,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    from api.storage import buckets

    bucket = f"gcs-{uuid.uuid4().hex[:8]}"
    buckets.client_for("gs", gcs_emulator.config()).gcs_client.create_bucket(bucket)  # type: ignore[attr-defined]
    _site_on(settings, gcs_emulator, "gs", bucket)
    owner = client_for("owner")
    data, other = b"gcs real content\n", b"GCS SWAPPED DATA\n"
    started = owner.post(
        "/api/files/uploads/",
        {"workspace": str(workspace.pk), "name": "g.txt", "size": len(data)},
        format="json",
    ).json()
    upload = started["upload"]
    assert requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30).ok
    file_id = started["file"]["id"]
    done = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert done.status_code == 200, done.content
    requests.put(upload["url"], data=other, headers=upload["headers"], timeout=30)
    assert _served(owner, file_id) == data
    stored = File.objects.get(pk=file_id).storage_uri
    assert stored.startswith(f"gs://{bucket}/ferry/workspaces/{workspace.pk}/files/{file_id}/")


@pytest.mark.django_db
def test_an_engine_reporting_another_workspaces_object_as_an_output_stores_nothing(
    users: dict[str, User],
    workspace: Workspace,
    make_file: Callable[..., File],
    settings: Any,
    moto_server: S3Server,
    client_for: Callable[[str], APIClient],
) -> None:
    """A workflow may output a String input as a File (``File f = s``): Cromwell then reports
    the URI, or a path under its local roots, as the output. Another workspace's object must
    not become a result file of B's job (a copy of A's data in B's workspace)."""
    from executors.base import Collected

    bucket = f"site-{uuid.uuid4().hex[:8]}"
    moto_server.boto3_client().create_bucket(Bucket=bucket)
    local_victim = make_file(workspace, b"A's local data\n")
    victim_path = Path(local_path(local_victim.storage_uri))
    _site_on(settings, moto_server, "s3", bucket)
    bucket_victim = File.objects.get(
        pk=upload(client_for("owner"), workspace, "a.txt", b"A's bucket data\n")
    )
    own = workspace_create(user=users["other"], name="B's")
    operation = make_wdl_operation(FIXTURES / "array_file_input")
    job = Job.objects.create(
        operation=operation,
        workspace=own,
        owner=users["other"],
        executor="cromwell:test",
        status=JobStatus.FINALIZING,
    )
    for collected in (
        Collected(
            succeeded=True,
            values={"counts": [1]},
            remote_files={"summary": [bucket_victim.storage_uri]},
        ),
        Collected(succeeded=True, values={"counts": [1]}, files={"summary": [victim_path]}),
    ):
        with pytest.raises(runner.OutputError, match="workspace you can't read"):
            runner.register_outputs(job, collected, None)
    assert not File.objects.filter(workspace=own).exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_completing_again_after_a_completion_stopped_halfway_keeps_the_file(
    settings: Any,
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """The state a completion leaves when it dies after copying to the file's key and
    pointing the File there, before removing the staging object: completing again keeps the
    copy (it used to treat the copy as the staging object and remove it) and drops staging."""
    from api.storage import transfers

    bucket = f"site-{uuid.uuid4().hex[:8]}"
    s3 = seaweedfs.boto3_client()
    s3.create_bucket(Bucket=bucket)
    _site_on(settings, seaweedfs, "s3", bucket)
    owner = client_for("owner")
    data = b"copied before the crash\n"
    started = owner.post(
        "/api/files/uploads/",
        {"workspace": str(workspace.pk), "name": "c.txt", "size": len(data)},
        format="json",
    ).json()
    upload = started["upload"]
    assert requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30).ok
    file = File.objects.get(pk=started["file"]["id"])
    staging_key = file.storage_uri.split("/", 3)[3]
    final_uri = file.pending_upload["final_uri"]  # type: ignore[index]
    final_key = final_uri.split("/", 3)[3]
    s3.copy_object(Bucket=bucket, Key=final_key, CopySource={"Bucket": bucket, "Key": staging_key})
    File.objects.filter(pk=file.pk).update(storage_uri=final_uri)

    done = owner.post(f"/api/files/uploads/{file.pk}/complete/", {}, format="json")
    assert done.status_code == 200, done.content
    assert _served(owner, str(file.pk)) == data
    later = timezone.now() + datetime.timedelta(seconds=settings.FERRY_SIGNED_URL_EXPIRES_S + 61)
    transfers.pending_uploads_expire(now=later)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [final_key]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_large_upload_copied_by_a_worker_keeps_the_bytes_completion_saw(
    settings: Any,
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Above FERRY_INLINE_VERIFY_MAX_BYTES a worker copies and checks the upload (202 first).
    Bytes PUT through the URL after completion was asked for, before the worker ran, are
    refused (the upload is removed), and after it, change nothing."""
    from api.storage import transfers

    settings.FERRY_INLINE_VERIFY_MAX_BYTES = 8
    bucket = f"site-{uuid.uuid4().hex[:8]}"
    s3 = seaweedfs.boto3_client()
    s3.create_bucket(Bucket=bucket)
    _site_on(settings, seaweedfs, "s3", bucket)
    owner = client_for("owner")
    data, other = b"large enough content\n", b"LARGE ENOUGH SWAPPED\n"

    def start() -> tuple[str, dict[str, Any]]:
        started = owner.post(
            "/api/files/uploads/",
            {"workspace": str(workspace.pk), "name": "l.txt", "size": len(data)},
            format="json",
        ).json()
        up = started["upload"]
        assert requests.put(up["url"], data=data, headers=up["headers"], timeout=30).ok
        return started["file"]["id"], up

    # Swapped between completion and the worker: refused.
    file_id, up = start()
    done = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert done.status_code == 202, done.content
    again = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert again.status_code == 409
    assert requests.put(up["url"], data=other, headers=up["headers"], timeout=30).ok
    assert "changed" in transfers.verify_upload(file_id)
    assert not File.objects.filter(pk=file_id).exists()

    # The worker ran: later PUTs change nothing.
    file_id, up = start()
    with django_capture_on_commit_callbacks(execute=True):
        done = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert done.status_code == 202, done.content
    assert File.objects.get(pk=file_id).status == "ready"
    requests.put(up["url"], data=other, headers=up["headers"], timeout=30)
    assert _served(owner, file_id) == data
    later = timezone.now() + datetime.timedelta(seconds=settings.FERRY_SIGNED_URL_EXPIRES_S + 61)
    transfers.pending_uploads_expire(now=later)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [File.objects.get(pk=file_id).storage_uri.split("/", 3)[3]]
