"""Files: streamed uploads (multipart and raw), checksums, type checks, downloads, moves."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from api import services
from api.exceptions import ApplicationError
from api.models import File, FileStatus, Role, User, Workspace
from api.storage import local_path
from api.storage.uploads import spool_body
from tests.conftest import multipart_file

pytestmark = pytest.mark.django_db


def stored_objects() -> list[Path]:
    """Every regular file under the storage root, spool folder included (leftovers show here)."""
    root = Path(settings.FERRY_STORAGE_ROOT)
    return [p for p in root.rglob("*") if p.is_file() and ".readyz" not in p.parts]


def content_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def upload_multipart(
    client: APIClient, workspace: Workspace, data: bytes, filename: str, **fields: Any
) -> Any:
    body = {"workspace": str(workspace.pk), "file": multipart_file(data, filename), **fields}
    return client.post("/api/files/", body, format="multipart")


def upload_raw(
    client: APIClient, workspace: Workspace, data: bytes, name: str, query: str = "", **headers: Any
) -> Any:
    from urllib.parse import quote

    url = f"/api/files/upload/?workspace={workspace.pk}&name={quote(name)}{query}"
    return client.generic("PUT", url, data, content_type="application/octet-stream", **headers)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- upload


def test_multipart_upload_hashes_and_stores(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    data = os.urandom(9 * 1024 * 1024 + 123)  # more than two spool chunks
    response = upload_multipart(client_for("editor"), workspace, data, "reads.bin")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["file_type"], body["status"], body["owner"]) == (
        "binary",
        "ready",
        "editor@example.org",
    )
    assert body["storage_uri"] == ""  # staff only
    stored = File.objects.get(pk=body["id"]).storage_uri
    assert stored.startswith("file:///")
    with open(local_path(stored), "rb") as fh:
        assert fh.read() == data
    spooled = [p for p in Path(settings.FILE_UPLOAD_TEMP_DIR).rglob("*") if not p.is_dir()]
    assert not spooled, "spooled upload left behind"


def test_raw_put_upload_streams_with_checksum(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    data = b"gene\tcount\nA\t1\nB\t2\n"
    digest = hashlib.sha256(data).hexdigest()
    response = upload_raw(
        client_for("owner"), workspace, data, "counts.tsv", HTTP_X_CHECKSUM_SHA256=digest.upper()
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["file_type"], body["status"], body["sha256"]) == (
        "counts.tsv",
        "table",
        "ready",
        digest,
    )
    assert body["content_type"].startswith("text/tab-separated-values")


def test_multipart_checksum_mismatch_keeps_nothing(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = upload_multipart(client_for("owner"), workspace, b"hello", "h.txt", sha256="0" * 64)
    assert response.status_code == 400
    assert response.json()["code"] == "checksum_mismatch"
    assert "sha256" in response.json()["details"]
    assert not File.objects.exists()
    assert stored_objects() == []


def test_raw_checksum_mismatch_keeps_nothing(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = upload_raw(
        client_for("owner"), workspace, b"hello", "h.txt", HTTP_X_CHECKSUM_SHA256="1" * 64
    )
    assert response.status_code == 400
    assert "X-Checksum-Sha256" in response.json()["details"]
    malformed = upload_raw(
        client_for("owner"), workspace, b"hello", "h.txt", HTTP_X_CHECKSUM_SHA256="xyz"
    )
    assert malformed.status_code == 400
    assert "X-Checksum-Sha256" in malformed.json()["details"]
    assert not File.objects.exists()
    assert stored_objects() == []


def test_raw_upload_needs_content_length(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = upload_raw(client_for("owner"), workspace, b"hello", "h.txt", CONTENT_LENGTH="")
    assert response.status_code == 411
    assert "Content-Length" in response.json()["details"]


def test_raw_upload_over_the_size_limit_is_refused_from_its_content_length(
    client_for: Callable[[str], APIClient], workspace: Workspace, settings: Any
) -> None:
    settings.FERRY_MAX_UPLOAD_BYTES = 10
    response = upload_raw(client_for("owner"), workspace, b"eleven byte", "big.bin")
    assert response.status_code == 413, response.json()
    assert response.json()["code"] == "too_large"
    assert "limited to 10 bytes" in response.json()["details"]["Content-Length"][0]
    assert not File.objects.exists()
    assert stored_objects() == []


def test_body_shorter_than_content_length_keeps_nothing(db: Any) -> None:
    with pytest.raises(ApplicationError) as raised:
        spool_body(io.BytesIO(b"only ten b"), 1000, name="x.bin", content_type=None)
    assert "Content-Length" in raised.value.details
    assert raised.value.code == "incomplete_body"
    assert stored_objects() == []


@pytest.mark.parametrize("send", ["multipart", "raw"])
def test_empty_upload_is_refused(
    send: str, client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    client = client_for("owner")
    if send == "multipart":
        response = upload_multipart(client, workspace, b"", "empty.txt")
    else:
        response = upload_raw(client, workspace, b"", "empty.txt", CONTENT_LENGTH="0")
    assert response.status_code == 400
    assert "file" in response.json()["details"]
    assert not File.objects.exists()
    assert stored_objects() == []


BAD_NAMES = ["../../x", "a/b", "a\\b", "a\x00b", "bell\x07", "x" * 300, "..", "   ", "é" * 200]


@pytest.mark.parametrize(
    "name",
    BAD_NAMES,
    ids=[
        "traversal",
        "slash",
        "backslash",
        "nul",
        "control",
        "300",
        "dotdot",
        "blank",
        "utf8-bytes",
    ],
)
def test_bad_names_are_refused_with_field(
    name: str, client_for: Callable[[str], APIClient], workspace: Workspace, file: File
) -> None:
    client = client_for("owner")
    raw = upload_raw(client, workspace, b"data", name)
    assert raw.status_code == 400, raw.json()
    assert "name" in raw.json()["details"], raw.json()
    multipart = upload_multipart(client, workspace, b"data", "ok.txt", name=name)
    assert multipart.status_code == 400, multipart.json()
    assert "name" in multipart.json()["details"], multipart.json()
    rename = client.patch(f"/api/files/{file.pk}/", {"name": name}, format="json")
    assert rename.status_code == 400
    assert "name" in rename.json()["details"]
    assert File.objects.count() == 1
    assert len(stored_objects()) == 1


def test_multipart_filename_path_is_reduced_to_its_last_part(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = upload_multipart(client_for("owner"), workspace, b"data", "../../etc/passwd")
    assert response.status_code == 201
    assert response.json()["name"] == "passwd"


def test_unicode_name_kept(client_for: Callable[[str], APIClient], workspace: Workspace) -> None:
    response = upload_raw(client_for("owner"), workspace, b"x\n", "Résumé données ✓.txt")
    assert response.status_code == 201
    assert response.json()["name"] == "Résumé données ✓.txt"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"workspace": "00000000-0000-0000-0000-000000000000"}, "workspace"),
        ({"workspace": "12"}, "workspace"),
        ({"file_type": "exe"}, "file_type"),
        ({"sha256": "abc"}, "sha256"),
    ],
)
def test_upload_bad_fields(
    fields: dict[str, str], field: str, client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    body = {"workspace": str(workspace.pk), "file": multipart_file(b"data", "d.txt"), **fields}
    response = client_for("owner").post("/api/files/", body, format="multipart")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"], response.json()
    assert stored_objects() == []


def test_upload_without_file_part(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = client_for("owner").post(
        "/api/files/", {"workspace": str(workspace.pk)}, format="multipart"
    )
    assert response.status_code == 400
    assert "file" in response.json()["details"]


def test_upload_as_json_names_the_missing_file(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = client_for("owner").post(
        "/api/files/", {"workspace": str(workspace.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "file" in response.json()["details"]
    xml = client_for("owner").post("/api/files/", "<x/>", content_type="application/xml")
    assert xml.status_code == 415
    assert xml.json()["code"] == "unsupported_media_type"


def test_raw_upload_to_workspace_of_others(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    response = upload_raw(client_for("other"), workspace, b"data", "d.txt")
    assert response.status_code == 400
    assert "workspace" in response.json()["details"]
    viewer = upload_raw(client_for("viewer"), workspace, b"data", "d.txt")
    assert viewer.status_code == 403
    assert stored_objects() == []


# ------------------------------------------------------------------------------------ file types


@pytest.mark.parametrize(
    ("name", "data", "file_type", "status", "reason"),
    [
        ("t.tsv", b"a\tb\n1\t2\n", "table", "ready", ""),
        ("t.csv", b"a,b\n1,2\n3,4\n", "table", "ready", ""),
        ("rownames.tsv", b"s1\ts2\ng1\t1\t2\n", "table", "ready", ""),
        ("ragged.tsv", b"a\tb\n1\t2\n3\n", "table", "invalid", "line 3 has 1 fields"),
        ("dupe.csv", b"a,a\n1,2\n", "table", "invalid", "repeats column names: a"),
        ("nohead.tsv", b"\n", "table", "invalid", "header"),
        ("latin1.tsv", b"a\tb\n\xe9\t1\n", "table", "invalid", "not UTF-8"),
        ("d.json", b'{"a": [1, 2]}', "json", "ready", ""),
        ("bad.json", b'{"a": [1, 2}\n', "json", "invalid", "line 1 column 12"),
        ("n.txt", b"hello\n", "text", "ready", ""),
        ("nul.txt", b"hel\x00lo", "text", "invalid", "NUL byte at byte offset 3"),
        ("blob.dat", b"\x00\xff\x00", "binary", "ready", ""),
    ],
)
def test_type_checked_after_upload(
    name: str,
    data: bytes,
    file_type: str,
    status: str,
    reason: str,
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
) -> None:
    body = upload_raw(client_for("owner"), workspace, data, name).json()
    assert (body["file_type"], body["status"]) == (file_type, status)
    assert reason in body["invalid_reason"]
    assert bool(body["invalid_reason"]) == (status == "invalid")


def test_declared_type_overrides_extension(
    client_for: Callable[[str], APIClient], workspace: Workspace
) -> None:
    body = upload_raw(
        client_for("owner"), workspace, b"x,y\n1,2\n", "data.out", query="&file_type=table"
    ).json()
    assert (body["file_type"], body["status"]) == ("table", "ready")


# -------------------------------------------------------------------------------------- download


def test_download_headers_and_body(
    client_for: Callable[[str], APIClient], workspace: Workspace, make_file: Callable[..., File]
) -> None:
    f = make_file(workspace, data=b"a,b\n1,2\n", name='Données "x".csv')
    response = client_for("viewer").get(f"/api/files/{f.pk}/download/")
    assert response.status_code == 200
    assert content_of(response) == b"a,b\n1,2\n"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Length"] == "8"
    assert response["ETag"] == f'"{f.sha256}"'
    assert response["Accept-Ranges"] == "bytes"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=utf-8''Donn%C3%A9es%20%22x%22.csv" in disposition


def test_download_conditional_and_ranges(
    client_for: Callable[[str], APIClient], workspace: Workspace, make_file: Callable[..., File]
) -> None:
    f = make_file(workspace, data=b"0123456789", name="digits.bin")
    client = client_for("owner")
    url = f"/api/files/{f.pk}/download/"
    etag = f'"{f.sha256}"'
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304

    part = client.get(url, HTTP_RANGE="bytes=2-5")
    assert part.status_code == 206
    assert content_of(part) == b"2345"
    assert part["Content-Range"] == "bytes 2-5/10"
    assert part["Content-Length"] == "4"
    tail = client.get(url, HTTP_RANGE="bytes=-3")
    assert tail.status_code == 206
    assert content_of(tail) == b"789"
    open_end = client.get(url, HTTP_RANGE="bytes=7-")
    assert content_of(open_end) == b"789"
    clipped = client.get(url, HTTP_RANGE="bytes=8-100")
    assert clipped["Content-Range"] == "bytes 8-9/10"

    beyond = client.get(url, HTTP_RANGE="bytes=10-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == "bytes */10"
    assert "Range" in beyond.json()["details"]
    several = client.get(url, HTTP_RANGE="bytes=0-1,4-5")
    assert several.status_code == 200
    stale = client.get(url, HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE='"old"')
    assert stale.status_code == 200
    assert content_of(stale) == b"0123456789"
    garbage = client.get(url, HTTP_RANGE="pages=1")
    assert garbage.status_code == 200


def test_download_of_missing_content_is_clear(
    client_for: Callable[[str], APIClient], file: File
) -> None:
    os.unlink(local_path(file.storage_uri))
    response = client_for("owner").get(f"/api/files/{file.pk}/download/")
    assert response.status_code == 503
    assert response.json()["code"] == "content_missing"


# ------------------------------------------------------------------------------ rename, move, delete


def test_rename_and_move(
    client_for: Callable[[str], APIClient], workspace: Workspace, file: File, users: dict[str, User]
) -> None:
    other_ws = services.workspace_create(user=users["other"], name="Other's")
    mine = services.workspace_create(user=users["editor"], name="Editor's")
    read_only = services.workspace_create(user=users["other"], name="Shared read-only")
    services.member_add(workspace=read_only, email="editor@example.org", role=Role.VIEWER)
    client = client_for("editor")
    url = f"/api/files/{file.pk}/"
    assert client.patch(url, {"name": "renamed.tsv"}, format="json").json()["name"] == "renamed.tsv"
    hidden = client.patch(url, {"workspace": str(other_ws.pk)}, format="json")
    assert hidden.status_code == 400
    assert "workspace" in hidden.json()["details"]
    viewer_only = client.patch(url, {"workspace": str(read_only.pk)}, format="json")
    assert viewer_only.status_code == 403
    assert "workspace" in viewer_only.json()["details"]
    moved = client.patch(url, {"workspace": str(mine.pk)}, format="json")
    assert moved.status_code == 200
    assert moved.json()["workspace"] == str(mine.pk)
    assert client_for("viewer").get(url).status_code == 404
    assert client.put(url, {"name": "x"}, format="json").status_code == 405


def test_delete_removes_content(
    client_for: Callable[[str], APIClient], file: File, django_capture_on_commit_callbacks: Any
) -> None:
    path = local_path(file.storage_uri)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("editor").delete(f"/api/files/{file.pk}/").status_code == 204
    assert not os.path.exists(path)
    assert not File.objects.exists()


# ------------------------------------------------------------------------------------------ lists


def test_file_list_filters_and_orders(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    make_file: Callable[..., File],
    users: dict[str, User],
) -> None:
    make_file(workspace, data=b"a\tb\n1\t2\n", name="small.tsv")
    make_file(workspace, data=b'{"k": 1, "v": [1,2,3]}', name="mid.json")
    make_file(workspace, data=b"a\tb\n1\n", name="broken.tsv")
    elsewhere = services.workspace_create(user=users["owner"], name="Elsewhere")
    make_file(elsewhere, data=b"zzzz", name="z.bin")
    client = client_for("owner")
    names = [
        f["name"]
        for f in client.get(f"/api/files/?workspace={workspace.pk}&ordering=-size").json()[
            "results"
        ]
    ]
    assert names == ["mid.json", "small.tsv", "broken.tsv"]
    invalid = client.get("/api/files/?status=invalid").json()["results"]
    assert [f["name"] for f in invalid] == ["broken.tsv"]
    assert [f["name"] for f in client.get("/api/files/?file_type=json").json()["results"]] == [
        "mid.json"
    ]
    assert [f["name"] for f in client.get("/api/files/?name=SMA").json()["results"]] == [
        "small.tsv"
    ]
    bad = client.get("/api/files/?status=lost")
    assert bad.status_code == 400
    assert "status" in bad.json()["details"]
    assert client_for("viewer").get(f"/api/files/?workspace={elsewhere.pk}").status_code == 400


def test_file_list_query_count_constant(
    client_for: Callable[[str], APIClient],
    workspace: Workspace,
    make_file: Callable[..., File],
    django_assert_max_num_queries: Any,
) -> None:
    for i in range(25):
        make_file(workspace, data=b"x", name=f"f{i}.bin")
    client = client_for("viewer")
    with django_assert_max_num_queries(2):
        assert len(client.get("/api/files/?page_size=5").json()["results"]) == 5
    with django_assert_max_num_queries(2):
        assert len(client.get("/api/files/?page_size=25").json()["results"]) == 25


def test_status_enum_is_closed() -> None:
    assert {s.value for s in FileStatus} == {"pending", "ready", "invalid"}
