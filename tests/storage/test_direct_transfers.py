"""Files in buckets through the API: workspace locations, streamed API uploads into a bucket,
direct uploads with signed URLs (checked on completion), signed downloads, imports, expiry.

Real bucket servers: SeaweedFS (checks signatures, expiry and checksums) and moto (checks none,
so a client can upload wrong bytes and Ferry's own completion check must catch them).
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from api.credentials import credential_create
from api.models import Credential, File, FileEvent, User, Workspace
from api.storage import transfers
from tests.harness.buckets import S3Server

pytestmark = pytest.mark.slow


def _bucket(server: S3Server, name: str) -> str:
    client = server.boto3_client()
    try:
        client.create_bucket(Bucket=name)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    except client.exceptions.BucketAlreadyExists:
        pass
    return name


def _site_bucket_settings(settings: Any, server: S3Server, bucket: str) -> None:
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    config = {k: v for k, v in asdict(server.config()).items() if v is not None}
    settings.FERRY_BUCKETS = {"s3": config}


@pytest.fixture
def seaweed_site(settings: Any, seaweedfs: S3Server) -> str:
    bucket = _bucket(seaweedfs, f"site-{uuid.uuid4().hex[:8]}")
    _site_bucket_settings(settings, seaweedfs, bucket)
    return bucket


@pytest.fixture
def moto_site(settings: Any, moto_server: S3Server) -> str:
    bucket = _bucket(moto_server, f"site-{uuid.uuid4().hex[:8]}")
    _site_bucket_settings(settings, moto_server, bucket)
    return bucket


def _start(client: APIClient, workspace: Workspace, data: bytes, **extra: Any) -> Any:
    body = {"workspace": str(workspace.pk), "name": "data.txt", "size": len(data), **extra}
    return client.post("/api/files/uploads/", body, format="json")


def _put(upload: dict[str, Any], data: bytes) -> requests.Response:
    return requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)


# --------------------------------------------------------------------------- API upload


def test_api_upload_streams_into_the_site_bucket(
    seaweed_site: str,
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner = client_for("owner")
    data = b"a\tb\n1\t2\n"
    response = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=t.tsv",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert File.objects.get(pk=body["id"]).storage_uri.startswith(
        f"s3://{seaweed_site}/ferry/workspaces/{workspace.pk}/"
    )
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    key = File.objects.get(pk=body["id"]).storage_uri.split("/", 3)[3]
    head = seaweedfs.boto3_client().head_object(Bucket=seaweed_site, Key=key)
    assert head["ContentLength"] == len(data)

    streamed = owner.get(f"/api/files/{body['id']}/download/")
    assert streamed.status_code == 200
    assert b"".join(streamed.streaming_content) == data  # type: ignore[attr-defined]
    ranged = owner.get(f"/api/files/{body['id']}/download/", HTTP_RANGE="bytes=2-4")
    assert ranged.status_code == 206
    assert b"".join(ranged.streaming_content) == data[2:5]  # type: ignore[attr-defined]

    redirect = owner.get(f"/api/files/{body['id']}/download/?redirect=1")
    assert redirect.status_code == 302
    fetched = requests.get(redirect["Location"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert "t.tsv" in fetched.headers["Content-Disposition"]

    with django_capture_on_commit_callbacks(execute=True):
        deleted = owner.delete(f"/api/files/{body['id']}/")
    assert deleted.status_code == 204
    listing = seaweedfs.boto3_client().list_objects_v2(Bucket=seaweed_site)
    assert listing.get("KeyCount", 0) == 0


# --------------------------------------------------------------------------- direct uploads


def test_direct_upload_signed_put_then_complete(
    seaweed_site: str, workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    owner = client_for("owner")
    data = b"hello straight to the bucket\n"
    started = _start(owner, workspace, data, sha256=hashlib.sha256(data).hexdigest())
    assert started.status_code == 201, started.content
    file_id = started.json()["file"]["id"]
    upload = started.json()["upload"]
    assert started.json()["file"]["status"] == "pending"
    assert upload["kind"] == "presigned_put"
    # Not downloadable while pending; completing before the PUT leaves it pending.
    assert owner.get(f"/api/files/{file_id}/download/").status_code == 409
    early = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert early.status_code == 400
    assert early.json()["code"] == "upload_missing"
    assert _put(upload, data).status_code == 200
    done = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "ready"
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()
    moves = [(e.payload["from"], e.payload["to"]) for e in FileEvent.objects.filter(file=file_id)]
    assert moves == [("pending", "ready")]  # through the File state machine's writer
    again = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert again.status_code == 404  # no longer a pending upload
    redirect = owner.get(f"/api/files/{file_id}/download/?redirect=1")
    assert requests.get(redirect["Location"], timeout=30).content == data


def test_signed_put_refused_when_expired_tampered_or_other_bytes(
    seaweed_site: str,
    settings: Any,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    owner = client_for("owner")
    data = b"0123456789"
    upload = _start(owner, workspace, data, sha256=hashlib.sha256(data).hexdigest()).json()[
        "upload"
    ]
    # Tampered: another key in the same signed URL.
    parts = urlsplit(upload["url"])
    tampered = urlunsplit(parts._replace(path=parts.path + "x"))
    assert _put({**upload, "url": tampered}, data).status_code == 403
    # Other bytes of the same length: the signed checksum refuses them.
    assert _put(upload, b"9876543210").status_code >= 400
    # Expired.
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Date"] = "20200101T000000Z"
    expired = urlunsplit(parts._replace(query=urlencode(query)))
    assert _put({**upload, "url": expired}, data).status_code == 403


def test_completion_refuses_wrong_size_and_checksum_and_removes_the_object(
    moto_site: str,
    moto_server: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    owner = client_for("owner")
    data = b"the declared content\n"
    cases = {
        "smaller": data[:-3],
        "larger": data + b"more",
        "sha256": data.upper(),
    }
    for word, sent in cases.items():
        started = _start(owner, workspace, data, sha256=hashlib.sha256(data).hexdigest()).json()
        key = File.objects.get(pk=started["file"]["id"]).storage_uri.split("/", 3)[3]
        # moto checks neither length nor checksum: the wrong bytes land in the bucket.
        requests.put(started["upload"]["url"], data=sent, timeout=30)
        done = owner.post(
            f"/api/files/uploads/{started['file']['id']}/complete/", {}, format="json"
        )
        assert done.status_code == 400, done.content
        assert done.json()["code"] == "upload_check_failed"
        assert word in done.json()["message"]
        assert not File.objects.filter(pk=started["file"]["id"]).exists()
        listing = moto_server.boto3_client().list_objects_v2(Bucket=moto_site, Prefix=key)
        assert listing.get("KeyCount", 0) == 0


def test_multipart_direct_upload(
    seaweed_site: str,
    settings: Any,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    settings.FERRY_MULTIPART_UPLOAD_ABOVE = 5 * 1024 * 1024
    settings.FERRY_MULTIPART_PART_SIZE = 5 * 1024 * 1024
    owner = client_for("owner")
    data = bytes(range(256)) * (11 * 1024 * 4)  # 11 MiB
    started = _start(owner, workspace, data)
    assert started.status_code == 201, started.content
    upload = started.json()["upload"]
    assert upload["kind"] == "presigned_multipart"
    assert len(upload["parts"]) == 3
    # Part 2 signed again (as a client does when the first URLs expired), and used.
    file_id = started.json()["file"]["id"]
    again = owner.post(f"/api/files/uploads/{file_id}/parts/", {"part_numbers": [2]}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["parts"][0]["part_number"] == 2
    upload["parts"][1] = again.json()["parts"][0]
    missing_part = owner.post(
        f"/api/files/uploads/{file_id}/parts/", {"part_numbers": [4]}, format="json"
    )
    assert missing_part.status_code == 400
    assert "part_numbers" in missing_part.json()["details"]
    etags = []
    offset = 0
    for part in upload["parts"]:
        chunk = data[offset : offset + part["size"]]
        offset += part["size"]
        response = requests.put(part["url"], data=chunk, timeout=60)
        assert response.status_code == 200
        etags.append({"part_number": part["part_number"], "etag": response.headers["ETag"]})
    file_id = started.json()["file"]["id"]
    missing = owner.post(f"/api/files/uploads/{file_id}/complete/", {}, format="json")
    assert missing.status_code == 400
    assert "parts" in missing.json()["details"]
    done = owner.post(f"/api/files/uploads/{file_id}/complete/", {"parts": etags}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["size"] == len(data)


def test_pending_uploads_expire_with_their_objects(
    moto_site: str,
    moto_server: S3Server,
    settings: Any,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    settings.FERRY_MULTIPART_UPLOAD_ABOVE = 5 * 1024 * 1024
    owner = client_for("owner")
    small = _start(owner, workspace, b"abc").json()
    requests.put(small["upload"]["url"], data=b"abc", timeout=30)
    big = _start(owner, workspace, b"x" * (6 * 1024 * 1024)).json()
    cancelled = _start(owner, workspace, b"x" * (6 * 1024 * 1024)).json()
    assert owner.delete(f"/api/files/{cancelled['file']['id']}/").status_code == 204
    assert (
        not moto_server.boto3_client().list_multipart_uploads(Bucket=moto_site).get("Uploads", [])
        or len(moto_server.boto3_client().list_multipart_uploads(Bucket=moto_site)["Uploads"]) == 1
    )
    assert transfers.pending_uploads_expire() == 0  # not yet
    later = timezone.now() + datetime.timedelta(seconds=settings.FERRY_PENDING_UPLOAD_EXPIRES_S + 1)
    assert transfers.pending_uploads_expire(now=later) == 2
    assert not File.objects.filter(pk__in=[small["file"]["id"], big["file"]["id"]]).exists()
    s3 = moto_server.boto3_client()
    assert s3.list_objects_v2(Bucket=moto_site).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=moto_site).get("Uploads")
    late = owner.post(f"/api/files/uploads/{small['file']['id']}/complete/", {}, format="json")
    assert late.status_code == 404
    # A client that still PUTs through the removed upload's signed URL: swept once it expired.
    requests.put(small["upload"]["url"], data=b"abc", timeout=30)
    assert s3.list_objects_v2(Bucket=moto_site).get("KeyCount", 0) == 1
    much_later = later + datetime.timedelta(seconds=settings.FERRY_SIGNED_URL_EXPIRES_S + 61)
    transfers.pending_uploads_expire(now=much_later)
    assert s3.list_objects_v2(Bucket=moto_site).get("KeyCount", 0) == 0


def test_direct_upload_is_refused_for_local_storage_and_bad_input(
    workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    owner = client_for("owner")
    local = _start(owner, workspace, b"abc")
    assert local.status_code == 409
    assert local.json()["code"] == "direct_upload_unavailable"
    bad = owner.post(
        "/api/files/uploads/",
        {"workspace": str(workspace.pk), "name": "../x", "size": 0, "sha256": "zz"},
        format="json",
    )
    assert bad.status_code == 400
    assert "size" in bad.json()["details"]


# --------------------------------------------------------------------------- locations


@pytest.fixture
def registered(users: dict[str, User], seaweedfs: S3Server) -> Callable[..., Credential]:
    def register(
        name: str, bucket: str, *, shared: bool, workspace_storage: bool = False, **secret: str
    ) -> Credential:
        _bucket(seaweedfs, bucket)
        return credential_create(
            user=users["staff"],
            name=name,
            kind="s3",
            config={
                "location": f"s3://{bucket}/data",
                "endpoint_url": seaweedfs.endpoint_url,
                "region": "us-east-1",
                "shared": shared,
                "workspace_storage": workspace_storage,
            },
            secret=secret
            or {
                "access_key_id": seaweedfs.access_key_id,
                "secret_access_key": seaweedfs.secret_access_key,
            },
        )

    return register


def test_workspace_storage_location_from_a_registered_credential(
    registered: Callable[..., Credential],
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    bucket = f"lab-{uuid.uuid4().hex[:8]}"
    # Owners choose among locations marked for workspace storage (not shared ones, from which
    # every user may import).
    credential = registered("lab", bucket, shared=False, workspace_storage=True)
    assert credential.check_ok, credential.check_message
    owner, editor = client_for("owner"), client_for("editor")
    url = f"/api/workspaces/{workspace.pk}/"
    refused = owner.patch(url, {"storage_location": "s3://elsewhere/x"}, format="json")
    assert refused.status_code == 400
    assert "storage_location" in refused.json()["details"]
    not_owner = editor.patch(url, {"storage_location": f"s3://{bucket}/data/ws"}, format="json")
    assert not_owner.status_code == 400
    chosen = owner.patch(url, {"storage_location": f"s3://{bucket}/data/ws"}, format="json")
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["storage_location"] == f"s3://{bucket}/data/ws/"

    data = b"x,y\n1,2\n"
    created = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=p.csv",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert created.status_code == 201, created.content
    assert File.objects.get(pk=created.json()["id"]).storage_uri.startswith(
        f"s3://{bucket}/data/ws/workspaces/"
    )
    started = _start(owner, workspace, data)
    assert started.status_code == 201
    assert File.objects.get(pk=started.json()["file"]["id"]).storage_uri.startswith(
        f"s3://{bucket}/data/ws/"
    )


def test_import_checks_location_permission_and_readability(
    registered: Callable[..., Credential],
    users: dict[str, User],
    seaweedfs: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    from api.services import workspace_create

    shared_bucket = f"shared-{uuid.uuid4().hex[:8]}"
    private_bucket = f"private-{uuid.uuid4().hex[:8]}"
    registered("shared", shared_bucket, shared=True)
    registered("private", private_bucket, shared=False)
    s3 = seaweedfs.boto3_client()
    s3.put_object(Bucket=shared_bucket, Key="data/reads.txt", Body=b"ACGT\n")
    s3.put_object(Bucket=private_bucket, Key="data/secret.txt", Body=b"no\n")
    owner, staff = client_for("owner"), client_for("staff")

    def importing(client: APIClient, uri: str) -> Any:
        return client.post(
            "/api/files/import/", {"workspace": str(workspace.pk), "uri": uri}, format="json"
        )

    created = importing(owner, f"s3://{shared_bucket}/data/reads.txt")
    assert created.status_code == 201, created.content
    assert created.json()["size"] == 5
    assert created.json()["managed"] is False
    assert created.json()["name"] == "reads.txt"
    imported = FileEvent.objects.filter(file=created.json()["id"])
    assert [(e.payload["from"], e.payload["to"]) for e in imported] == [(None, "ready")]
    duplicate = importing(owner, f"s3://{shared_bucket}/data/reads.txt")
    assert duplicate.status_code == 409
    outside = importing(owner, f"s3://{shared_bucket}/other/reads.txt")
    assert outside.status_code == 400
    assert outside.json()["code"] == "location_refused"
    missing = importing(owner, f"s3://{shared_bucket}/data/none.txt")
    assert missing.status_code in (400, 404)
    assert "none.txt" in missing.json()["message"]
    private = importing(owner, f"s3://{private_bucket}/data/secret.txt")
    assert private.status_code == 400
    assert private.json()["code"] == "forbidden"
    assert importing(staff, f"s3://{private_bucket}/data/secret.txt").status_code == 201
    # Shared objects may be registered in another workspace too (once per workspace).
    again = client_for("staff").post(
        "/api/files/import/",
        {
            "workspace": str(workspace_create(user=users["staff"], name="S").pk),
            "uri": f"s3://{shared_bucket}/data/reads.txt",
        },
        format="json",
    )
    assert again.status_code == 201, again.content
    # Deleting an imported file leaves the object where it was.
    assert owner.delete(f"/api/files/{created.json()['id']}/").status_code == 204
    assert s3.head_object(Bucket=shared_bucket, Key="data/reads.txt")["ContentLength"] == 5


def test_a_bucket_that_disappears_gives_a_clear_error(
    moto_site: str,
    moto_server: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    owner = client_for("owner")
    created = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=a.txt",
        b"abc\n",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    ).json()
    s3 = moto_server.boto3_client()
    for item in s3.list_objects_v2(Bucket=moto_site).get("Contents", []):
        s3.delete_object(Bucket=moto_site, Key=item["Key"])
    s3.delete_bucket(Bucket=moto_site)
    response = owner.get(f"/api/files/{created['id']}/download/")
    assert 400 <= response.status_code < 600
    assert response.status_code != 500
    assert set(response.json()) == {"code", "message", "details"}
    assert moto_site in response.json()["message"]
    upload = _start(owner, workspace, b"abc")
    assert upload.status_code != 500


# --------------------------------------------------------------------------- Django STORAGES, GCS


def test_site_bucket_configured_in_storages_is_used(
    settings: Any,
    moto_server: S3Server,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    """A deployment names its bucket in STORAGES["site-bucket"] (django-storages backend)."""
    from django.core.files.storage import storages

    from api import storage
    from api.storage import locations

    bucket = _bucket(moto_server, f"site-{uuid.uuid4().hex[:8]}")
    _site_bucket_settings(settings, moto_server, bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "site-bucket": {
            "BACKEND": "api.storage.backends.FerryS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": "ferry",
                "endpoint_url": moto_server.endpoint_url,
                "region_name": "us-east-1",
                "access_key": moto_server.access_key_id,
                "secret_key": moto_server.secret_access_key,
                "addressing_style": "path",
                "file_overwrite": True,
            },
        },
    }
    assert storage.location_storage(locations.site_location()) is storages["site-bucket"]
    data = b"through django-storages\n"
    created = client_for("owner").generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=d.txt",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert created.status_code == 201, created.content
    key = File.objects.get(pk=created.json()["id"]).storage_uri.split("/", 3)[3]
    head = moto_server.boto3_client().head_object(Bucket=bucket, Key=key)
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert head["ContentType"] == "text/plain; charset=utf-8" or head["ContentType"].startswith(
        "text/plain"
    )


def test_gcs_workspace_files_and_resumable_direct_upload(
    settings: Any, gcs_emulator: Any, workspace: Workspace, client_for: Callable[[str], APIClient]
) -> None:
    from api.storage import buckets

    bucket = f"gcs-{uuid.uuid4().hex[:8]}"
    config = gcs_emulator.config()
    client = buckets.client_for("gs", config)
    client.gcs_client.create_bucket(bucket)  # type: ignore[attr-defined]
    settings.FERRY_STORAGE_LOCATION = f"gs://{bucket}/ferry"
    settings.FERRY_BUCKETS = {"gs": {k: v for k, v in asdict(config).items() if v is not None}}
    owner = client_for("owner")
    data = b"col\n1\n2\n"
    created = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=g.csv",
        data,  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    assert created.status_code == 201, created.content
    assert File.objects.get(pk=created.json()["id"]).storage_uri.startswith(f"gs://{bucket}/ferry/")
    streamed = owner.get(f"/api/files/{created.json()['id']}/download/")
    assert b"".join(streamed.streaming_content) == data  # type: ignore[attr-defined]

    # Anonymous emulator credentials can't sign: the client gets a resumable upload session.
    payload = b"straight into GCS\n"
    started = _start(owner, workspace, payload, md5=hashlib.md5(payload).hexdigest())  # noqa: S324
    assert started.status_code == 201, started.content
    upload = started.json()["upload"]
    assert upload["kind"] == "resumable_session"
    assert _put(upload, payload).status_code in (200, 201)
    done = owner.post(
        f"/api/files/uploads/{started.json()['file']['id']}/complete/", {}, format="json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["md5"] == hashlib.md5(payload).hexdigest()  # noqa: S324

    # A declared crc32c (GCS reports one) is checked too.
    import google_crc32c

    crc = f"{google_crc32c.value(payload):08x}"
    for declared, expected in ((crc, 200), ("00000000", 400)):
        started = _start(owner, workspace, payload, crc32c=declared)
        assert _put(started.json()["upload"], payload).status_code in (200, 201)
        done = owner.post(
            f"/api/files/uploads/{started.json()['file']['id']}/complete/", {}, format="json"
        )
        assert done.status_code == expected, done.content
        if expected == 200:
            assert done.json()["crc32c"] == crc
        else:
            assert "crc32c" in done.json()["message"]


def test_users_cannot_import_other_workspaces_objects_from_the_site_bucket(
    seaweed_site: str,
    users: dict[str, User],
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
) -> None:
    from api.services import workspace_create

    owner, other = client_for("owner"), client_for("other")
    created = owner.generic(
        "PUT",
        f"/api/files/upload/?workspace={workspace.pk}&name=private.txt",
        b"not yours\n",  # type: ignore[arg-type]
        content_type="application/octet-stream",
    )
    uri = File.objects.get(pk=created.json()["id"]).storage_uri
    elsewhere = workspace_create(user=users["other"], name="Other's")
    refused = other.post(
        "/api/files/import/", {"workspace": str(elsewhere.pk), "uri": uri}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "forbidden"
    # Staff may, and an imported object may be registered in several workspaces.
    staff_ws = workspace_create(user=users["staff"], name="Staff's")
    allowed = client_for("staff").post(
        "/api/files/import/", {"workspace": str(staff_ws.pk), "uri": uri}, format="json"
    )
    assert allowed.status_code == 201, allowed.content
    assert allowed.json()["managed"] is False
    # A workspace can't be pointed at the site bucket by its owner, only by staff.
    aimed = owner.patch(
        f"/api/workspaces/{workspace.pk}/",
        {"storage_location": f"s3://{seaweed_site}/ferry/mine"},
        format="json",
    )
    assert aimed.status_code == 400


def test_large_uploads_without_a_server_checksum_are_verified_by_a_worker(
    moto_site: str,
    settings: Any,
    workspace: Workspace,
    client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Multipart objects carry no full-object sha256: a worker reads them once (tasks run
    inline in the tests), and the completing request answers 202 meanwhile. (Completion copies
    the upload to the file's key; a copy made in one request gets a sha256 from the server, so
    the copy is made multipart here, as it is for objects above 5 GiB.)"""
    settings.FERRY_MULTIPART_UPLOAD_ABOVE = 5 * 1024 * 1024
    settings.FERRY_MULTIPART_PART_SIZE = 5 * 1024 * 1024
    settings.FERRY_INLINE_VERIFY_MAX_BYTES = 1024 * 1024
    settings.FERRY_BUCKETS = {
        "s3": {
            **settings.FERRY_BUCKETS["s3"],
            "copy_multipart_threshold": 5 * 1024 * 1024,
            "copy_part_size": 5 * 1024 * 1024,
        }
    }
    owner = client_for("owner")
    good = bytes(range(256)) * (24 * 1024)  # 6 MiB
    for data, sent, expect_ready in ((good, good, True), (good, good[::-1], False)):
        started = _start(owner, workspace, data, sha256=hashlib.sha256(data).hexdigest()).json()
        parts = []
        offset = 0
        for part in started["upload"]["parts"]:
            chunk = sent[offset : offset + part["size"]]
            offset += part["size"]
            response = requests.put(part["url"], data=chunk, timeout=60)
            parts.append({"part_number": part["part_number"], "etag": response.headers["ETag"]})
        with django_capture_on_commit_callbacks(execute=True):
            done = owner.post(
                f"/api/files/uploads/{started['file']['id']}/complete/",
                {"parts": parts},
                format="json",
            )
        assert done.status_code == 202, done.content
        file = File.objects.filter(pk=started["file"]["id"]).first()
        if expect_ready:
            assert file is not None
            assert file.status == "ready"
            assert file.sha256 == hashlib.sha256(data).hexdigest()
            assert file.md5 == ""
        else:
            assert file is None  # the other bytes were removed with their pending file
