"""Buckets: S3 (and S3-compatible servers) and Google Cloud Storage behind one small interface.

What django-storages doesn't do lives here: streamed uploads that record a sha256, server-side
copies verified by checksum, signed upload/download URLs and an access check for credentials.

    ref = parse_uri("s3://bucket/some/key")
    bucket = client_for(ref, BucketConfig(endpoint_url="http://127.0.0.1:9000", ...))
    info = bucket.put_stream(ref, fileobj, size, "text/plain")   # -> ObjectInfo (sha256 recorded)
    bucket.copy(ref, parse_uri("s3://other/key"))                   # server-side, verified
    streamed_copy(bucket, ref, gcs, parse_uri("gs://b/k"))         # across providers, chunked

Without a config, :func:`client_for` uses ``settings.FERRY_BUCKETS[scheme]`` (a dict of
:class:`BucketConfig` fields) or, failing that, the provider's own environment credentials.

Checksums. Every object Ferry writes carries its sha256 as object metadata (``sha256``: S3's
``x-amz-meta-sha256``, a GCS metadata entry), so copies can be checked without reading them:
:func:`same_content` compares two objects by sha256 (recorded, or computed by the server: S3's
full-object ``ChecksumSHA256``, which server-side copies ask for), else MD5 (an S3 single-part
ETag, GCS md5Hash), else CRC32C (GCS), else — for an S3 copy of an object without a sha256 —
the source ETag that the copy records as ``source-etag``.

Memory. Streamed transfers hold about ``chunk_size x (max_concurrency + 1)`` bytes (8 MiB x 5
by default), whatever the object's size. A spooled upload saved through the Django storage
(:class:`~api.storage.backends.FerryS3Storage`) is sent from its file path and holds no part.

Errors are :class:`BucketError` subclasses (an :class:`~api.exceptions.ApplicationError`), whose
messages name the bucket, key and endpoint but never a secret.

GCS signing. Signed URLs (v4) need credentials that can sign: a service-account key
(``credentials_json``) or other ``google.auth`` signing credentials. Without them (anonymous
access to an emulator, or token-only credentials) :meth:`GCSBucket.presign_put` hands out a
*resumable upload session* URL instead (``kind == "resumable_session"``: one ``PUT`` of the
whole body; valid for up to a week unless cancelled with ``DELETE``), and
:meth:`GCSBucket.presign_get` raises :class:`SigningUnavailable` (stream through Ferry instead).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..spool import spool_dir
from .base import BucketClient
from .config import BucketConfig, default_config
from .errors import (
    BucketAccessDenied,
    BucketError,
    BucketNotFound,
    BucketUnavailable,
    ChecksumMismatch,
    DestinationExists,
    InvalidBucketConfig,
    InvalidObjectURI,
    ObjectNotFound,
    SigningUnavailable,
)
from .gcs import GCSBucket
from .limits import (
    MAX_PRESIGN_SECONDS,
    S3_MAX_COPY_OBJECT_SIZE,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    SHA256_METADATA_KEY,
    SOURCE_ETAG_METADATA_KEY,
    GiB,
    KiB,
    MiB,
)
from .refs import ObjectInfo, ObjectRef, content_disposition, parse_uri, same_content
from .s3 import S3Bucket
from .streams import ChunkReader, HashingReader, Readable

__all__ = [
    "MAX_PRESIGN_SECONDS",
    "S3_MAX_COPY_OBJECT_SIZE",
    "S3_MAX_PARTS",
    "S3_MAX_PART_SIZE",
    "S3_MIN_PART_SIZE",
    "SHA256_METADATA_KEY",
    "SOURCE_ETAG_METADATA_KEY",
    "BucketAccessDenied",
    "BucketClient",
    "BucketConfig",
    "BucketError",
    "BucketNotFound",
    "BucketUnavailable",
    "ChecksumMismatch",
    "ChunkReader",
    "DestinationExists",
    "GCSBucket",
    "GiB",
    "HashingReader",
    "InvalidBucketConfig",
    "InvalidObjectURI",
    "KiB",
    "MiB",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectRef",
    "Readable",
    "S3Bucket",
    "SigningUnavailable",
    "client_for",
    "content_disposition",
    "default_config",
    "parse_uri",
    "same_content",
    "streamed_copy",
]


# ---------------------------------------------------------------------------------------------
# Choosing a client


_PROVIDERS: dict[str, type[BucketClient]] = {"s3": S3Bucket, "gs": GCSBucket}
_CLIENTS: dict[tuple[str, BucketConfig], BucketClient] = {}
_CLIENTS_LOCK = threading.Lock()
_MAX_CACHED_CLIENTS = 64


def client_for(ref: ObjectRef | str, config: BucketConfig | None = None) -> BucketClient:
    """The client for ``ref``'s provider (``"s3"``/``"gs"`` or an :class:`ObjectRef`/URI).

    Clients are cached per configuration and are safe to share between threads.
    """
    if isinstance(ref, ObjectRef):
        scheme = ref.scheme
    elif "://" in ref:
        scheme = parse_uri(ref).scheme
    else:
        scheme = ref
    if scheme not in _PROVIDERS:
        raise InvalidObjectURI(f"unsupported bucket scheme {scheme!r}: use s3:// or gs://")
    config = config if config is not None else default_config(scheme)
    key = (scheme, config)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if len(_CLIENTS) >= _MAX_CACHED_CLIENTS:  # e.g. after many credential changes
                _CLIENTS.clear()
            client = _PROVIDERS[scheme](config)
            _CLIENTS[key] = client
    return client


# ---------------------------------------------------------------------------------------------
# Streamed copies (across providers, to and from local files)


def _local_path(value: ObjectRef | Path | str, side: str) -> Path:
    if isinstance(value, ObjectRef):
        raise BucketError(f"a local {side} needs a path, not {value}", status_code=400)
    return Path(value)


def _bucket_ref(value: ObjectRef | Path | str, side: str) -> ObjectRef:
    if not isinstance(value, ObjectRef):
        raise BucketError(f"a bucket {side} needs an ObjectRef, not a path", status_code=400)
    return value


def _local_chunks(fh: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while True:
        data = fh.read(chunk_size)
        if not data:
            return
        yield data


def streamed_copy(
    src_client: BucketClient | None,
    src: ObjectRef | Path | str,
    dst_client: BucketClient | None,
    dst: ObjectRef | Path | str,
    *,
    content_type: str | None = None,
) -> ObjectInfo:
    """Copy through Ferry in chunks (bounded memory), verifying size and sha256.

    Either side may be a local file: its client ``None`` and a path. The source's recorded
    sha256 (when it has one) is checked against the bytes read, and the destination gets the
    sha256 recorded (a local source is hashed in a first pass and checked again on the way,
    so a file that changes meanwhile is caught). A bucket destination that already holds the
    same content is left alone; a local destination is replaced atomically. On a mismatch the
    destination is removed and :class:`ChecksumMismatch` raised. Memory: about one chunk per
    transfer thread (``BucketConfig.chunk_size`` x ``max_concurrency``).
    """
    if src_client is None:
        path = _local_path(src, "source")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise ObjectNotFound(f"local file {path} does not exist") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if dst_client is None:
                chunks = ChunkReader(_local_chunks(fh, 8 * MiB))
                return _write_local(chunks, _local_path(dst, "destination"), size, None, str(path))
            return dst_client.put_stream(_bucket_ref(dst, "destination"), fh, size, content_type)

    src_ref = _bucket_ref(src, "source")
    info = src_client.head(src_ref)
    if dst_client is not None:
        existing = dst_client.head_or_none(_bucket_ref(dst, "destination"))
        if existing is not None and same_content(info, existing) is True:
            return existing
    reader = ChunkReader(src_client.open_read(src_ref))
    try:
        if dst_client is None:
            return _write_local(
                reader, _local_path(dst, "destination"), info.size, info.sha256, str(src_ref)
            )
        # A source without a recorded sha256 gets one computed on the way (put_stream does it).
        return dst_client.put_stream(
            _bucket_ref(dst, "destination"),
            reader,
            info.size,
            content_type or info.content_type,
            sha256=info.sha256,
        )
    finally:
        reader.close()


def _temp_dir_for(path: Path) -> str:
    """Where a local write goes before its atomic rename into ``path``: this process's spool
    folder when it is on the same file system (a process killed mid-write leaves its part
    there, and the spool sweeper removes it), else the destination's own folder."""
    with contextlib.suppress(OSError):
        spool = spool_dir()
        if os.stat(spool).st_dev == os.stat(path.parent).st_dev:
            return spool
    return str(path.parent)


def _write_local(
    reader: ChunkReader, path: Path, size: int, expected_sha256: str | None, source: str
) -> ObjectInfo:
    path.parent.mkdir(parents=True, exist_ok=True)
    hashing = HashingReader(reader)
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=_temp_dir_for(path))
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                data = hashing.read(8 * MiB)
                if not data:
                    break
                out.write(data)
        if hashing.count != size or (expected_sha256 and hashing.sha256 != expected_sha256):
            raise ChecksumMismatch(
                f"{source} read {hashing.count} bytes with sha256 {hashing.sha256}; expected "
                f"{size} bytes" + (f" with sha256 {expected_sha256}" if expected_sha256 else "")
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return ObjectInfo(size=hashing.count, sha256=hashing.sha256)
