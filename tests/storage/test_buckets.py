"""The bucket layer (api/storage/buckets/) against real servers: moto, SeaweedFS and a GCS emulator."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests

from api.exception_handlers import exception_handler
from api.storage import buckets
from api.storage.buckets import (
    BucketAccessDenied,
    BucketClient,
    BucketConfig,
    BucketError,
    BucketNotFound,
    BucketUnavailable,
    ChecksumMismatch,
    ChunkReader,
    DestinationExists,
    InvalidObjectURI,
    ObjectNotFound,
    ObjectRef,
    SigningUnavailable,
    client_for,
    parse_uri,
    streamed_copy,
)

if TYPE_CHECKING:
    from tests.harness.buckets import GCSServer, S3Server


pytestmark = pytest.mark.slow

MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - compared with what the server reports


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def stream_of(data: bytes, piece: int = 1 * MiB) -> ChunkReader:
    """A non-seekable stream (like a request body or another bucket's object)."""
    return ChunkReader(data[i : i + piece] for i in range(0, len(data), piece))


@dataclass
class Store:
    """A client and a fresh bucket on one of the servers."""

    name: str
    client: BucketClient
    bucket: str
    scheme: str
    server: S3Server | GCSServer

    def ref(self, key: str) -> ObjectRef:
        return ObjectRef(self.scheme, self.bucket, key)


def make_s3_store(server: S3Server, **overrides: Any) -> Store:
    bucket = unique()
    server.boto3_client().create_bucket(Bucket=bucket)
    return Store(server.name, client_for("s3", server.config(**overrides)), bucket, "s3", server)


def make_gcs_store(server: GCSServer, **overrides: Any) -> Store:
    client = client_for("gs", server.config(**overrides))
    bucket = unique()
    client.gcs_client.create_bucket(bucket)  # type: ignore[attr-defined]
    return Store("gcs", client, bucket, "gs", server)


@pytest.fixture(params=["moto", "seaweedfs", "gcs"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "gcs":
        return make_gcs_store(request.getfixturevalue("gcs_emulator"))
    return make_s3_store(
        request.getfixturevalue("moto_server" if request.param == "moto" else request.param)
    )


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_store(request: pytest.FixtureRequest) -> Store:
    return make_s3_store(
        request.getfixturevalue("moto_server" if request.param == "moto" else request.param)
    )


@pytest.fixture
def moto_store(moto_server: S3Server) -> Store:
    return make_s3_store(moto_server)


@pytest.fixture
def seaweed_store(seaweedfs: S3Server) -> Store:
    return make_s3_store(seaweedfs)


@pytest.fixture
def gcs_store(gcs_emulator: GCSServer) -> Store:
    return make_gcs_store(gcs_emulator)


@pytest.fixture(scope="session")
def service_account_json() -> str:
    """A throw-away service-account key, so GCS URLs can be signed (v4) without Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "ferry-test",
            "private_key_id": "test",
            "private_key": pem,
            "client_email": "ferry@ferry-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",
        }
    )


# ---------------------------------------------------------------------------------------------
# References, settings, helpers


def test_parse_uri_round_trip_and_errors() -> None:
    ref = parse_uri("s3://my-bucket/a/b c/é.txt")
    assert ref == ObjectRef("s3", "my-bucket", "a/b c/é.txt")
    assert str(ref) == "s3://my-bucket/a/b c/é.txt"
    assert parse_uri("gs://bkt/x").scheme == "gs"
    assert parse_uri("s3://bkt").key == ""
    assert parse_uri("s3://bkt/pre").child("x").key == "pre/x"
    assert parse_uri("s3://bkt/pre/").child("x").key == "pre/x"
    for bad in ("http://bkt/x", "bkt/x", "s3://B!/x", "s3://ab/x", "s3:///x"):
        with pytest.raises(InvalidObjectURI) as info:
            parse_uri(bad)
        assert info.value.status_code == 400
    with pytest.raises(InvalidObjectURI):
        parse_uri("s3://bkt/dir/").require_key()


def test_content_disposition_is_unicode_safe() -> None:
    value = buckets.content_disposition('résumé "final".pdf')
    assert value.startswith('attachment; filename="r_sum_ _final_.pdf"')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in value
    assert buckets.content_disposition("plain.txt") == 'attachment; filename="plain.txt"'


def test_config_hides_secrets_and_builds_from_dicts() -> None:
    config = BucketConfig.from_dict(
        {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "s3cr3t-value", "region": "eu-west-1"}
    )
    assert "s3cr3t-value" not in repr(config)
    assert config.redact("oops s3cr3t-value leaked") == "oops [secret] leaked"
    with pytest.raises(buckets.InvalidBucketConfig, match="unknown bucket settings: nope") as info:
        BucketConfig.from_dict({"nope": 1})
    assert info.value.status_code == 400
    with pytest.raises(buckets.InvalidBucketConfig, match="wrong type"):
        BucketConfig.from_dict({"chunk_size": "big"})
    with pytest.raises(InvalidObjectURI):
        client_for("ftp")


def test_settings_and_bad_keys(settings: Any) -> None:
    settings.FERRY_BUCKETS = {"s3": {"endpoint_url": "http://127.0.0.1:1", "region": "eu-west-1"}}
    assert buckets.default_config("s3").region == "eu-west-1"
    assert buckets.default_config("gs") == BucketConfig()
    with pytest.raises(buckets.InvalidBucketConfig) as info:
        client_for("gs", BucketConfig(credentials_json="{not json", anonymous=True))
    assert info.value.code == "invalid_credentials"
    assert "not json" not in info.value.message


def test_client_for_caches_per_config(moto_server: S3Server) -> None:
    config = moto_server.config()
    assert client_for("s3://bkt/x", config) is client_for(parse_uri("s3://other/y"), config)
    assert client_for("s3", config) is not client_for("s3", moto_server.config(max_attempts=1))


def test_errors_map_to_the_api_error_shape() -> None:
    response = exception_handler(BucketNotFound("S3 bucket 'x' does not exist"), {})
    assert response is not None
    assert response.status_code == 404
    assert response.data["code"] == "bucket_not_found"
    assert exception_handler(BucketUnavailable("down"), {}).status_code == 503  # type: ignore[union-attr]
    assert exception_handler(BucketAccessDenied("no"), {}).status_code == 502  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Objects


def test_put_head_read_ranges_delete(store: Store) -> None:
    data = os.urandom(300_000)
    ref = store.ref("dir/obj.bin")
    info = store.client.put_stream(ref, io.BytesIO(data), len(data), "application/x-test")
    assert info.size == len(data)
    assert info.sha256 == sha256(data)
    assert info.content_type == "application/x-test"
    assert info.md5 == md5(data)
    if store.scheme == "gs":
        assert info.crc32c is not None
        assert len(info.crc32c) == 8
    head = store.client.head(ref)
    assert (head.size, head.sha256, head.md5) == (info.size, info.sha256, info.md5)
    assert store.client.exists(ref)
    assert store.client.read_bytes(ref) == data
    assert store.client.read_bytes(ref, 10, 19) == data[10:20]
    assert store.client.read_bytes(ref, 299_990) == data[299_990:]
    assert store.client.read_bytes(ref, 0, 0) == data[:1]
    store.client.delete(ref)
    assert not store.client.exists(ref)
    store.client.delete(ref)  # a missing object is fine
    with pytest.raises(ObjectNotFound) as info_missing:
        store.client.head(ref)
    assert str(ref) in info_missing.value.message
    with pytest.raises(ObjectNotFound):
        store.client.open_read(ref)


def test_put_stream_large_non_seekable_records_sha256(store: Store) -> None:
    data = os.urandom(20 * MiB + 123)
    ref = store.ref("big.bin")
    info = store.client.put_stream(ref, stream_of(data), len(data))
    assert info.size == len(data)
    assert info.sha256 == sha256(data)  # added after the upload (S3 self-copy / GCS patch)
    assert store.client.head(ref).sha256 == sha256(data)
    assert sha256(store.client.read_bytes(ref)) == sha256(data)


def test_put_stream_with_declared_sha256(store: Store) -> None:
    data = b"declared" * 1000
    ref = store.ref("declared.bin")
    info = store.client.put_stream(ref, stream_of(data), len(data), sha256=sha256(data))
    assert info.sha256 == sha256(data)
    with pytest.raises(ChecksumMismatch, match="not the expected"):
        store.client.put_stream(store.ref("wrong.bin"), stream_of(data), len(data), sha256="0" * 64)
    assert not store.client.exists(store.ref("wrong.bin"))


def test_put_stream_short_stream_is_removed(store: Store) -> None:
    ref = store.ref("short.bin")
    with pytest.raises(ChecksumMismatch, match="ended after 50 of 100 bytes"):
        store.client.put_stream(ref, stream_of(b"x" * 50), 100)
    assert not store.client.exists(ref)


# ---------------------------------------------------------------------------------------------
# Server-side copies


def test_copy_is_verified_and_idempotent(store: Store) -> None:
    data = os.urandom(100_000)
    src, dst = store.ref("src.bin"), store.ref("copies/dst.bin")
    store.client.put_stream(src, io.BytesIO(data), len(data), "text/plain")
    copied = store.client.copy(src, dst)
    assert copied.size == len(data)
    assert copied.sha256 == sha256(data)
    assert copied.content_type == "text/plain"
    assert store.client.read_bytes(dst) == data
    marker = _last_modified(store, dst)
    time.sleep(1.1)  # a second copy would show a newer Last-Modified / generation
    again = store.client.copy(src, dst)
    assert again.sha256 == copied.sha256
    assert _last_modified(store, dst) == marker
    assert store.client.copy(src, src).size == len(data)


def _last_modified(store: Store, ref: ObjectRef) -> Any:
    if store.scheme == "gs":
        return store.client.head(ref).version
    boto = store.server.boto3_client()  # type: ignore[union-attr]
    return boto.head_object(Bucket=ref.bucket, Key=ref.key)["LastModified"]


def test_copy_refuses_a_destination_with_other_content(store: Store) -> None:
    src, dst = store.ref("a.bin"), store.ref("b.bin")
    store.client.put_stream(src, io.BytesIO(b"A" * 1000), 1000)
    store.client.put_stream(dst, io.BytesIO(b"B" * 1000), 1000)
    with pytest.raises(DestinationExists) as info:
        store.client.copy(src, dst)
    assert info.value.status_code == 409
    assert "other content" in info.value.message
    assert store.client.read_bytes(dst) == b"B" * 1000  # untouched
    replaced = store.client.copy(src, dst, overwrite=True)
    assert replaced.sha256 == sha256(b"A" * 1000)
    assert store.client.read_bytes(dst) == b"A" * 1000


def test_copy_needs_one_provider(moto_store: Store) -> None:
    with pytest.raises(BucketError, match="this client can't reach it") as info:
        moto_store.client.copy(moto_store.ref("x"), parse_uri("gs://elsewhere/x"))
    assert info.value.code == "wrong_provider"


def test_multipart_copy_above_a_small_threshold(s3_store: Store) -> None:
    client = client_for(
        "s3",
        s3_store.server.config(copy_multipart_threshold=5 * MiB, copy_part_size=5 * MiB),
    )
    data = os.urandom(11 * MiB)
    src = s3_store.ref("big-src.bin")
    client.put_stream(src, io.BytesIO(data), len(data))
    dst = s3_store.ref("big-dst.bin")
    copied = client.copy(src, dst)
    assert copied.etag is not None
    assert copied.etag.endswith("-3")
    assert copied.sha256 == sha256(data)
    assert sha256(client.read_bytes(dst)) == sha256(data)
    assert client.copy(src, dst).etag == copied.etag  # idempotent

    # An object written by someone else, without a sha256: the copy records its source ETag.
    boto = s3_store.server.boto3_client()  # type: ignore[union-attr]
    boto.put_object(Bucket=s3_store.bucket, Key="foreign.bin", Body=data)
    foreign = s3_store.ref("foreign.bin")
    assert client.head(foreign).sha256 is None
    foreign_copy = client.copy(foreign, s3_store.ref("foreign-copy.bin"))
    assert foreign_copy.metadata["source-etag"] == client.head(foreign).etag
    assert client.copy(foreign, s3_store.ref("foreign-copy.bin")).etag == foreign_copy.etag


# ---------------------------------------------------------------------------------------------
# Signed URLs


def test_presigned_put_then_head(s3_store: Store) -> None:
    ref = s3_store.ref("uploads/direct.csv")
    data = b"a,b\n1,2\n"
    signed = s3_store.client.presign_put(ref, 300, "text/csv", len(data))
    assert signed["method"] == "PUT"
    response = requests.put(signed["url"], data=data, headers=signed["headers"], timeout=10)
    assert response.status_code == 200, response.text
    info = s3_store.client.head(ref)
    assert (info.size, info.content_type, info.md5) == (len(data), "text/csv", md5(data))


def test_presigned_put_with_sha256_refuses_other_bytes(seaweed_store: Store) -> None:
    ref = seaweed_store.ref("uploads/checked.bin")
    data = b"exactly these bytes"
    signed = seaweed_store.client.presign_put(
        ref, 300, "application/octet-stream", sha256=sha256(data)
    )
    assert "x-amz-checksum-sha256" in signed["headers"]
    bad = requests.put(signed["url"], data=b"other bytes", headers=signed["headers"], timeout=10)
    assert bad.status_code == 400
    assert "BadDigest" in bad.text
    good = requests.put(signed["url"], data=data, headers=signed["headers"], timeout=10)
    assert good.status_code == 200, good.text
    assert seaweed_store.client.head(ref).sha256 == sha256(data)  # the server's own checksum


def test_presigned_put_expired_and_tampered_are_refused(seaweed_store: Store) -> None:
    client, ref = seaweed_store.client, seaweed_store.ref("uploads/expiring.txt")
    expiring = client.presign_put(ref, 1, "text/plain")
    tampered = client.presign_put(ref, 300, "text/plain")
    time.sleep(2.1)
    expired = requests.put(expiring["url"], data=b"late", headers=expiring["headers"], timeout=10)
    assert expired.status_code == 403
    assert "expired" in expired.text.lower()

    parts = urlsplit(tampered["url"])
    other_key = urlunsplit(parts._replace(path=parts.path.replace("expiring", "elsewhere")))
    refused = requests.put(other_key, data=b"x", headers=tampered["headers"], timeout=10)
    assert refused.status_code == 403
    assert "SignatureDoesNotMatch" in refused.text
    wrong_type = requests.put(
        tampered["url"], data=b"x", headers={"Content-Type": "text/html"}, timeout=10
    )
    assert wrong_type.status_code == 403
    sized = client.presign_put(ref, 300, "text/plain", size=7)
    too_long = requests.put(sized["url"], data=b"in time!", headers=sized["headers"], timeout=10)
    assert too_long.status_code == 403  # Content-Length is signed
    assert not client.exists(ref)
    ok = requests.put(sized["url"], data=b"in time", headers=sized["headers"], timeout=10)
    assert ok.status_code == 200
    assert client.read_bytes(ref) == b"in time"


def test_presigned_multipart_upload(s3_store: Store) -> None:
    client = s3_store.client
    assert isinstance(client, buckets.S3Bucket)
    ref = s3_store.ref("uploads/multi.bin")
    data = os.urandom(11 * MiB)
    plan = client.presign_multipart(ref, len(data), 5 * MiB, 300, "application/octet-stream")
    assert [p["size"] for p in plan["parts"]] == [5 * MiB, 5 * MiB, 1 * MiB]
    done = []
    offset = 0
    for part in plan["parts"]:
        body = data[offset : offset + part["size"]]
        offset += part["size"]
        response = requests.put(part["url"], data=body, timeout=30)
        assert response.status_code == 200, response.text
        done.append({"part_number": part["part_number"], "etag": response.headers["ETag"]})
    info = client.complete_multipart(ref, plan["upload_id"], list(reversed(done)))
    assert info.size == len(data)
    assert sha256(client.read_bytes(ref)) == sha256(data)

    other = client.presign_multipart(s3_store.ref("uploads/abandoned.bin"), 10, 5 * MiB, 60)
    client.abort_multipart(s3_store.ref("uploads/abandoned.bin"), other["upload_id"])


def test_presigned_get_with_download_name(s3_store: Store) -> None:
    ref = s3_store.ref("results/report.tsv")
    s3_store.client.put_stream(ref, io.BytesIO(b"x\ty\n"), 4, "application/octet-stream")
    url = s3_store.client.presign_get(ref, 300, "résumé report.tsv", "text/tab-separated-values")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"x\ty\n"
    assert response.headers["Content-Type"] == "text/tab-separated-values"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20report.tsv" in disposition


def test_gcs_signed_urls(gcs_emulator: GCSServer, service_account_json: str) -> None:
    signing = make_gcs_store(gcs_emulator, credentials_json=service_account_json)
    assert signing.client.can_sign  # type: ignore[attr-defined]
    ref = signing.ref("uploads/signed.csv")
    signed = signing.client.presign_put(ref, 300, "text/csv")
    assert signed["kind"] == "signed_url"
    assert "X-Goog-Signature=" in signed["url"]
    assert requests.put(signed["url"], data=b"a,b\n", headers=signed["headers"], timeout=10).ok
    assert signing.client.head(ref).size == 4

    url = signing.client.presign_get(ref, 300, "été.csv", "text/csv")
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-type"] == ["text/csv"]
    assert "X-Goog-Signature" in query
    response = requests.get(url, timeout=10)
    assert response.content == b"a,b\n"
    assert "filename*=UTF-8''%C3%A9t%C3%A9.csv" in response.headers["Content-Disposition"]


def test_gcs_anonymous_uses_a_resumable_session_and_cannot_sign_downloads(
    gcs_store: Store,
) -> None:
    ref = gcs_store.ref("uploads/session.txt")
    session = gcs_store.client.presign_put(ref, 300, "text/plain", 5)
    assert session["kind"] == "resumable_session"
    response = requests.put(session["url"], data=b"hello", headers=session["headers"], timeout=10)
    assert response.status_code in (200, 201), response.text
    info = gcs_store.client.head(ref)
    assert (info.size, info.content_type) == (5, "text/plain")
    with pytest.raises(SigningUnavailable, match="can't sign URLs"):
        gcs_store.client.presign_get(ref, 60, "x.txt", "text/plain")


# ---------------------------------------------------------------------------------------------
# Streamed copies


def _peak_during(action: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = action()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    hasher = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(64):
            block = os.urandom(MiB)
            hasher.update(block)
            fh.write(block)
    yield path, hasher.hexdigest()
    path.unlink()


def test_streamed_copy_local_to_s3_then_s3_to_gcs_in_bounded_memory(
    moto_server: S3Server, gcs_emulator: GCSServer, big_file: tuple[Path, str], tmp_path: Path
) -> None:
    """Memory is about chunk_size x (max_concurrency + 1) whatever the size: here 8 MiB x 3,
    for a 64 MiB object."""
    tuning = {"chunk_size": 8 * MiB, "max_concurrency": 2}
    s3, gcs = make_s3_store(moto_server, **tuning), make_gcs_store(gcs_emulator, **tuning)
    path, digest = big_file
    size = path.stat().st_size
    limit = size // 2
    s3_ref = s3.ref("big/64mib.bin")
    info, peak = _peak_during(lambda: streamed_copy(None, path, s3.client, s3_ref))
    assert (info.size, info.sha256) == (size, digest)
    assert peak < limit, f"local -> S3 peaked at {peak / MiB:.1f} MiB"

    gs_ref = gcs.ref("big/64mib.bin")
    info, peak = _peak_during(lambda: streamed_copy(s3.client, s3_ref, gcs.client, gs_ref))
    assert (info.size, info.sha256) == (size, digest)
    assert gcs.client.head(gs_ref).crc32c is not None
    assert peak < limit, f"S3 -> GCS peaked at {peak / MiB:.1f} MiB"

    local = tmp_path / "back.bin"
    info, peak = _peak_during(lambda: streamed_copy(gcs.client, gs_ref, None, local))
    assert (info.size, info.sha256) == (size, digest)
    assert peak < limit, f"GCS -> local peaked at {peak / MiB:.1f} MiB"
    assert local.stat().st_size == size
    # Repeating a copy whose destination already matches moves no bytes.
    again, peak = _peak_during(lambda: streamed_copy(s3.client, s3_ref, gcs.client, gs_ref))
    assert again.version == gcs.client.head(gs_ref).version
    assert peak < 1 * MiB


def test_streamed_copy_records_sha256_for_foreign_objects(
    gcs_store: Store, moto_store: Store
) -> None:
    data = os.urandom(3 * MiB)
    blob = gcs_store.client.gcs_client.bucket(gcs_store.bucket).blob("foreign.bin")  # type: ignore[attr-defined]
    blob.upload_from_string(data)
    src = gcs_store.ref("foreign.bin")
    assert gcs_store.client.head(src).sha256 is None
    dst = moto_store.ref("from-gcs.bin")
    info = streamed_copy(gcs_store.client, src, moto_store.client, dst)
    assert info.sha256 == sha256(data)
    assert moto_store.client.read_bytes(dst) == data


def test_streamed_copy_detects_a_corrupt_source(
    moto_store: Store, gcs_store: Store, tmp_path: Path
) -> None:
    boto = moto_store.server.boto3_client()  # type: ignore[union-attr]
    data = b"the real bytes" * 1000
    boto.put_object(
        Bucket=moto_store.bucket, Key="corrupt.bin", Body=data, Metadata={"sha256": "1" * 64}
    )
    src = moto_store.ref("corrupt.bin")
    dst = gcs_store.ref("corrupt.bin")
    with pytest.raises(ChecksumMismatch):
        streamed_copy(moto_store.client, src, gcs_store.client, dst)
    assert not gcs_store.client.exists(dst)
    with pytest.raises(ChecksumMismatch):
        streamed_copy(moto_store.client, src, None, tmp_path / "out" / "corrupt.bin")
    assert list((tmp_path / "out").iterdir()) == []  # no partial or temporary file left


def test_server_side_copy_detects_a_corrupt_source(moto_store: Store) -> None:
    """moto (like S3) computes a sha256 of the copy; a source whose recorded sha256 is wrong
    fails the verification and the copy is removed."""
    boto = moto_store.server.boto3_client()  # type: ignore[union-attr]
    boto.put_object(
        Bucket=moto_store.bucket, Key="corrupt.bin", Body=b"real", Metadata={"sha256": "1" * 64}
    )
    dst = moto_store.ref("corrupt-copy.bin")
    with pytest.raises(ChecksumMismatch, match="does not match its source"):
        moto_store.client.copy(moto_store.ref("corrupt.bin"), dst)
    assert not moto_store.client.exists(dst)


# ---------------------------------------------------------------------------------------------
# Access checks and failures


def test_check_access_with_good_credentials(store: Store) -> None:
    assert store.client.check_access(store.ref("ferry/")) == []
    assert store.client.check_access(store.ref("")) == []


def test_check_access_with_a_wrong_secret(seaweedfs: S3Server, seaweed_store: Store) -> None:
    secret = "definitely-not-the-right-secret-42"
    client = client_for("s3", seaweedfs.config(secret_access_key=secret))
    problems = client.check_access(seaweed_store.ref("ferry/"))
    assert [p.split(":")[0] for p in problems] == ["list", "write"]
    assert all("refused" in p and "credentials" in p for p in problems)
    for text in problems:
        assert secret not in text
        assert seaweedfs.secret_access_key not in text
    with pytest.raises(BucketAccessDenied) as info:
        client.head(seaweed_store.ref("anything"))
    assert secret not in info.value.message


def test_check_access_read_only_credentials(seaweedfs: S3Server, seaweed_store: Store) -> None:
    client = client_for(
        "s3",
        seaweedfs.config(
            access_key_id=seaweedfs.readonly_access_key_id,
            secret_access_key=seaweedfs.readonly_secret_access_key,
        ),
    )
    problems = client.check_access(seaweed_store.ref("ferry/"))
    assert len(problems) == 1
    assert problems[0].startswith("write:")


def test_missing_bucket_gives_clear_errors(store: Store) -> None:
    ref = ObjectRef(store.scheme, unique("gone"), "some/key.bin")
    for action in (
        lambda: store.client.head(ref),
        lambda: store.client.exists(ref),
        lambda: store.client.open_read(ref),
        lambda: store.client.put_stream(ref, io.BytesIO(b"x"), 1),
        lambda: store.client.copy(ref, store.ref("x")),
        lambda: store.client.delete(ref),
    ):
        with pytest.raises(BucketNotFound) as info:
            action()
        assert ref.bucket in info.value.message
        assert "does not exist" in info.value.message
    problems = store.client.check_access(ObjectRef(store.scheme, ref.bucket, "prefix/"))
    assert len(problems) == 1
    assert problems[0].startswith("list:")
    assert "does not exist" in problems[0]
    # A copy into a missing bucket:
    store.client.put_stream(store.ref("here.bin"), io.BytesIO(b"x"), 1)
    with pytest.raises(BucketNotFound):
        store.client.copy(store.ref("here.bin"), ObjectRef(store.scheme, ref.bucket, "x"))


def test_unreachable_servers_are_503() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s3 = client_for(
        "s3",
        BucketConfig(
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key_id="k",
            secret_access_key="unreachable-secret",
            max_attempts=1,
            connect_timeout_s=2,
        ),
    )
    with pytest.raises(BucketUnavailable) as info:
        s3.head(parse_uri("s3://bkt/x"))
    assert info.value.status_code == 503
    assert "unreachable" in info.value.message
    problems = s3.check_access(parse_uri("s3://bkt/"))
    assert problems
    assert all("unreachable" in p for p in problems)
    assert not any("unreachable-secret" in p for p in problems)

    gcs = client_for(
        "gs",
        BucketConfig(
            api_endpoint=f"http://127.0.0.1:{port}",
            anonymous=True,
            retry_deadline_s=1,
            connect_timeout_s=2,
        ),
    )
    with pytest.raises(BucketUnavailable):
        gcs.head(parse_uri("gs://bkt/x"))
