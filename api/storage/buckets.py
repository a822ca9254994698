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
by default), whatever the object's size.

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

import base64
import binascii
import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol
from urllib.parse import quote

from django.conf import settings

from ..exceptions import ApplicationError

logger = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

SHA256_METADATA_KEY = "sha256"
SOURCE_ETAG_METADATA_KEY = "source-etag"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
S3_MAX_COPY_OBJECT_SIZE = 5 * GiB

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


# ---------------------------------------------------------------------------------------------
# Errors


class BucketError(ApplicationError):
    """A bucket operation failed; the base of every error this module raises."""

    status_code: int = HTTPStatus.BAD_GATEWAY.value
    code = "bucket_error"


class InvalidObjectURI(BucketError):
    status_code = HTTPStatus.BAD_REQUEST.value
    code = "invalid_uri"


class BucketNotFound(BucketError):
    status_code = HTTPStatus.NOT_FOUND.value
    code = "bucket_not_found"


class ObjectNotFound(BucketError):
    status_code = HTTPStatus.NOT_FOUND.value
    code = "object_not_found"


class BucketAccessDenied(BucketError):
    """The bucket refused Ferry's credentials (a configuration problem, hence 502, not 403)."""

    code = "bucket_access_denied"


class BucketUnavailable(BucketError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE.value
    code = "bucket_unavailable"


class ChecksumMismatch(BucketError):
    """Bytes or a copy did not match the expected size or checksum (the bad object is removed)."""

    code = "checksum_mismatch"


class DestinationExists(BucketError):
    """A copy's destination already holds other (or unverifiable) content; nothing was changed."""

    status_code = HTTPStatus.CONFLICT.value
    code = "destination_exists"


class InvalidBucketConfig(BucketError):
    """Connection settings that can't be used as given (an admin's input, hence 400)."""

    status_code = HTTPStatus.BAD_REQUEST.value
    code = "invalid_bucket_settings"


class SigningUnavailable(BucketError):
    """These credentials cannot sign URLs (e.g. anonymous GCS access); stream through Ferry."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE.value
    code = "signing_unavailable"


# ---------------------------------------------------------------------------------------------
# References and object information


@dataclass(frozen=True)
class ObjectRef:
    """``s3://bucket/key`` or ``gs://bucket/key``; the key is kept as written (not %-decoded).

    An empty key (``s3://bucket/`` or ``s3://bucket``) names a whole bucket, which is allowed as
    a prefix (e.g. for :meth:`BucketClient.check_access`) but not as an object.
    """

    scheme: str
    bucket: str
    key: str = ""

    SCHEMES: ClassVar[tuple[str, ...]] = ("s3", "gs")

    def __post_init__(self) -> None:
        if self.scheme not in self.SCHEMES:
            raise InvalidObjectURI(f"unsupported bucket scheme {self.scheme!r}: use s3:// or gs://")
        if not _BUCKET_NAME.fullmatch(self.bucket) or ".." in self.bucket:
            raise InvalidObjectURI(
                f"{self.bucket!r} is not a valid bucket name (3-222 characters: lower-case "
                "letters, digits, '.', '-' and '_', starting and ending with a letter or digit)"
            )
        if len(self.key.encode()) > 1024 or "\x00" in self.key or "\r" in self.key:
            raise InvalidObjectURI("an object key must be at most 1024 bytes, without NUL or CR")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def uri(self) -> str:
        return str(self)

    def child(self, name: str) -> ObjectRef:
        """The object ``name`` under this prefix (a ``/`` is put between them when needed)."""
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return ObjectRef(self.scheme, self.bucket, prefix + name)

    def require_key(self) -> ObjectRef:
        if not self.key or self.key.endswith("/"):
            raise InvalidObjectURI(f"{self} names a prefix, not an object")
        return self


def parse_uri(uri: str) -> ObjectRef:
    """``"s3://bucket/a/b.txt"`` -> ``ObjectRef("s3", "bucket", "a/b.txt")``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise InvalidObjectURI(f"{uri!r} is not a bucket URI (s3://bucket/key or gs://bucket/key)")
    bucket, _, key = rest.partition("/")
    return ObjectRef(scheme.lower(), bucket, key)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells about an object. Checksums are lower-case hex, or None when unknown."""

    size: int
    etag: str | None = None
    md5: str | None = None
    crc32c: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False)
    version: str | None = None  # S3 VersionId or GCS generation
    # A sha256 the server computed itself from the bytes (S3 full-object ChecksumSHA256), as
    # opposed to ``sha256``, which is the recorded one (metadata) when there is one.
    server_sha256: str | None = None


def same_content(a: ObjectInfo, b: ObjectInfo) -> bool | None:
    """True/False when two objects are known to hold the same/different bytes, None if unknown."""
    if a.size != b.size:
        return False
    a_sha = {v for v in (a.sha256, a.server_sha256) if v}
    b_sha = {v for v in (b.sha256, b.server_sha256) if v}
    if a_sha and b_sha:
        return len(a_sha | b_sha) == 1
    for name in ("md5", "crc32c"):
        left, right = getattr(a, name), getattr(b, name)
        if left and right:
            return bool(left == right)
    if a.etag and b.metadata.get(SOURCE_ETAG_METADATA_KEY) == a.etag:
        return True
    if b.etag and a.metadata.get(SOURCE_ETAG_METADATA_KEY) == b.etag:
        return True
    return None


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition value safe for any file name (RFC 6266 ``filename*``)."""
    fallback = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;' else "_" for ch in filename
    )
    value = f'{disposition}; filename="{fallback or "download"}"'
    encoded = quote(filename, safe="")
    if encoded != fallback:
        value += f"; filename*=UTF-8''{encoded}"
    return value


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class BucketConfig:
    """How to reach a bucket provider. Secrets are never part of ``repr()`` or messages.

    S3: ``endpoint_url`` for S3-compatible servers (path-style addressing is then used),
    ``region``, and ``access_key_id``/``secret_access_key`` (``session_token``) — or none of them
    to use boto3's own chain (environment, config files, instance/task roles).

    GCS: ``project``, ``credentials_json`` (a service-account key, as JSON text) or the
    application-default credentials; ``api_endpoint`` for an emulator (default: the
    ``STORAGE_EMULATOR_HOST`` environment variable). ``anonymous=True`` makes API calls without
    credentials (emulators); a ``credentials_json`` given as well is then only used to sign URLs.
    When ``anonymous`` is None it is true exactly when the endpoint comes from
    ``STORAGE_EMULATOR_HOST`` and no key is given.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: str | None = None  # "path" | "virtual" | "auto"; default path with endpoint

    project: str | None = None
    credentials_json: str | None = field(default=None, repr=False)
    api_endpoint: str | None = None
    anonymous: bool | None = None

    chunk_size: int = 8 * MiB  # streamed reads and upload parts
    multipart_threshold: int = 8 * MiB  # uploads above this are multipart/resumable
    max_concurrency: int = 4
    copy_multipart_threshold: int = S3_MAX_COPY_OBJECT_SIZE
    copy_part_size: int = 512 * MiB
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int = 3  # S3 attempts per request; GCS retries within retry_deadline_s
    retry_deadline_s: float = 60.0

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "secret_access_key",
        "session_token",
        "credentials_json",
    )

    def __post_init__(self) -> None:
        try:
            if self.chunk_size < 256 * KiB or self.chunk_size % (256 * KiB):
                raise InvalidBucketConfig("chunk_size must be a multiple of 256 KiB")
            if self.copy_part_size < S3_MIN_PART_SIZE:
                raise InvalidBucketConfig("copy_part_size must be at least 5 MiB")
            if self.max_concurrency < 1 or self.max_attempts < 1:
                raise InvalidBucketConfig("max_concurrency and max_attempts must be at least 1")
        except TypeError:
            raise InvalidBucketConfig("bucket settings have values of the wrong type") from None
        if self.addressing_style not in (None, "path", "virtual", "auto"):
            raise InvalidBucketConfig("addressing_style must be path, virtual or auto")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BucketConfig:
        """Build from a plain dict (settings or a decrypted credential); unknown keys are errors."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidBucketConfig(f"unknown bucket settings: {', '.join(unknown)}")
        return cls(**data)

    def secrets(self) -> list[str]:
        values = [getattr(self, name) for name in self.SECRET_FIELDS]
        found = [v for v in values if v]
        if self.credentials_json:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                key = json.loads(self.credentials_json).get("private_key")
                if key:
                    found.append(key)
        return found

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "[secret]")
        return text


def default_config(scheme: str) -> BucketConfig:
    """The site's settings for a provider: ``settings.FERRY_BUCKETS[scheme]`` (a dict of
    :class:`BucketConfig` fields), else defaults (environment credentials)."""
    configured = getattr(settings, "FERRY_BUCKETS", {}) or {}
    return BucketConfig.from_dict(dict(configured.get(scheme, {})))


# ---------------------------------------------------------------------------------------------
# Streams


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class HashingReader:
    """Reads at most ``limit`` bytes from ``source``, hashing (sha256) and counting on the way.

    Not seekable (a rewind would spoil the hash); ``tell()`` is the count, which is what
    resumable-upload code asks for.
    """

    def __init__(self, source: Readable, limit: int | None = None) -> None:
        self._source = source
        self._limit = limit
        self.hasher = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        if self._limit is not None:
            left = self._limit - self.count
            if left <= 0:
                return b""
            size = left if size is None or size < 0 else min(size, left)
        data = self._source.read(size)
        if data:
            self.hasher.update(data)
            self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (whence == io.SEEK_SET and offset == self.count) or (
            whence == io.SEEK_CUR and offset == 0
        ):
            return self.count
        raise io.UnsupportedOperation("a hashed stream cannot be rewound")

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


class ChunkReader:
    """A file-like ``read()`` over an iterator of byte chunks, holding at most one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = b""
        self._offset = 0

    def read(self, size: int = -1, /) -> bytes:
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            if self._offset >= len(self._current):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._current, self._offset = nxt, 0
                continue
            end = len(self._current) if wanted is None else self._offset + (wanted - got)
            piece = self._current[self._offset : end]
            self._offset += len(piece)
            got += len(piece)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _is_seekable(fileobj: Any) -> bool:
    try:
        return bool(fileobj.seekable()) and hasattr(fileobj, "tell")
    except (AttributeError, ValueError, OSError):
        return False


def _sha256_of_seekable(fileobj: Any, size: int, chunk_size: int) -> str:
    start = fileobj.tell()
    hasher = hashlib.sha256()
    left = size
    while left > 0:
        data = fileobj.read(min(chunk_size, left))
        if not data:
            break
        hasher.update(data)
        left -= len(data)
    fileobj.seek(start)
    return hasher.hexdigest()


def _check_expiry(expires_s: int) -> int:
    if not 1 <= int(expires_s) <= MAX_PRESIGN_SECONDS:
        raise BucketError(
            f"a signed URL's lifetime must be 1 to {MAX_PRESIGN_SECONDS} seconds",
            code="invalid_expiry",
            status_code=HTTPStatus.BAD_REQUEST.value,
        )
    return int(expires_s)


def _b64_to_hex(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def _valid_sha256(value: str | None) -> str | None:
    if value and _HEX64.fullmatch(value.lower()):
        return value.lower()
    return None


# ---------------------------------------------------------------------------------------------
# The interface


class BucketClient(ABC):
    """One provider (S3 or GCS) with one set of connection settings."""

    scheme: ClassVar[str]

    def __init__(self, config: BucketConfig) -> None:
        self.config = config

    # --- provider-specific ---------------------------------------------------------------

    @abstractmethod
    def head(self, ref: ObjectRef) -> ObjectInfo:
        """Size, checksums and metadata; :class:`ObjectNotFound`/:class:`BucketNotFound`."""

    @abstractmethod
    def _upload(
        self,
        ref: ObjectRef,
        reader: HashingReader,
        size: int,
        content_type: str,
        metadata: dict[str, str],
    ) -> None: ...

    @abstractmethod
    def _record_sha256(self, ref: ObjectRef, info: ObjectInfo, sha256: str) -> ObjectInfo:
        """Add the sha256 metadata to an object already written (without reading it)."""

    @abstractmethod
    def open_read(
        self, ref: ObjectRef, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        """Chunks of the object, or of bytes ``start``..``end`` (both inclusive, as in HTTP)."""

    @abstractmethod
    def delete(self, ref: ObjectRef) -> None:
        """Remove the object; a missing object is fine (a missing bucket is not)."""

    @abstractmethod
    def _server_copy(self, src: ObjectRef, src_info: ObjectInfo, dst: ObjectRef) -> None: ...

    @abstractmethod
    def _list(self, prefix: ObjectRef, limit: int) -> list[str]: ...

    @abstractmethod
    def presign_put(
        self,
        ref: ObjectRef,
        expires_s: int,
        content_type: str,
        size: int | None = None,
        *,
        sha256: str | None = None,
    ) -> dict[str, Any]:
        """``{"url", "method", "headers", "kind"}``: the client sends the body with ``method``
        and exactly these ``headers``."""

    @abstractmethod
    def presign_get(
        self,
        ref: ObjectRef,
        expires_s: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A short-lived URL that downloads the object as ``filename`` with ``content_type``."""

    # --- shared ---------------------------------------------------------------------------

    def _check_scheme(self, *refs: ObjectRef) -> None:
        for ref in refs:
            if ref.scheme != self.scheme:
                raise BucketError(
                    f"{ref} is not a {self.scheme}:// object; this client can't reach it",
                    code="wrong_provider",
                    status_code=HTTPStatus.BAD_REQUEST.value,
                )

    def exists(self, ref: ObjectRef) -> bool:
        try:
            self.head(ref)
        except ObjectNotFound:
            return False
        return True

    def head_or_none(self, ref: ObjectRef) -> ObjectInfo | None:
        try:
            return self.head(ref)
        except ObjectNotFound:
            return None

    def read_bytes(self, ref: ObjectRef, start: int | None = None, end: int | None = None) -> bytes:
        """The whole object (or range) in memory: for small objects only."""
        return b"".join(self.open_read(ref, start, end))

    def put_stream(
        self,
        ref: ObjectRef,
        fileobj: Readable,
        size: int,
        content_type: str | None = None,
        *,
        sha256: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Stream ``size`` bytes from ``fileobj`` to ``ref`` in bounded memory; record sha256.

        With ``sha256`` given (e.g. a :class:`~api.storage.uploads.SpooledUpload`'s), it is stored up
        front and checked against the bytes sent. Otherwise a seekable ``fileobj`` is hashed in
        a first pass, and a plain stream is hashed on the way and the sha256 added afterwards
        (S3: a server-side copy onto itself; GCS: a metadata patch). A short stream or a
        checksum mismatch removes the object and raises :class:`ChecksumMismatch`.
        """
        self._check_scheme(ref)
        ref.require_key()
        if size < 0:
            raise BucketError("size must not be negative", status_code=400, code="invalid_size")
        declared = _valid_sha256(sha256)
        if sha256 and not declared:
            raise BucketError(
                "sha256 must be 64 hex digits", status_code=400, code="invalid_sha256"
            )
        if declared is None and _is_seekable(fileobj):
            declared = _sha256_of_seekable(fileobj, size, self.config.chunk_size)
        meta = dict(metadata or {})
        if declared:
            meta[SHA256_METADATA_KEY] = declared
        reader = HashingReader(fileobj, limit=size)
        written = False
        try:
            self._upload(ref, reader, size, content_type or "application/octet-stream", meta)
            written = True
        except ValueError:  # GCS's client refuses a stream shorter than the size it was told
            if reader.count >= size:
                raise
        problem = None
        if reader.count != size:
            problem = f"the stream ended after {reader.count} of {size} bytes"
        elif declared and reader.sha256 != declared:
            problem = f"the bytes sent have sha256 {reader.sha256}, not the expected {declared}"
        if problem:
            if written:
                self._delete_quietly(ref)
            raise ChecksumMismatch(f"upload to {ref} failed its check ({problem}); nothing kept")
        info = self.head(ref)
        if info.size != size or (info.server_sha256 and info.server_sha256 != reader.sha256):
            self._delete_quietly(ref)
            raise ChecksumMismatch(
                f"{ref} does not hold the {size} bytes sent (size {info.size}, or the server's "
                "sha256 differs); removed"
            )
        if info.sha256 is None:
            info = self._record_sha256(ref, info, reader.sha256)
        return info

    def _delete_quietly(self, ref: ObjectRef) -> None:
        try:
            self.delete(ref)
        except BucketError as exc:
            logger.warning("could not remove %s: %s", ref, exc.message)

    def copy(self, src: ObjectRef, dst: ObjectRef, *, overwrite: bool = False) -> ObjectInfo:
        """Server-side copy within this provider, verified; the bytes never pass through Ferry.

        Idempotent: a destination that already holds the same content (same size and checksum)
        is left alone. A destination with other content — or content that can't be compared —
        is refused with :class:`DestinationExists` unless ``overwrite=True``. After copying,
        size and checksums must match the source, else the copy is removed and
        :class:`ChecksumMismatch` raised.
        """
        self._check_scheme(src, dst)
        src.require_key()
        dst.require_key()
        src_info = self.head(src)
        if src == dst:
            return src_info
        existing = self.head_or_none(dst)
        if existing is not None:
            same = same_content(src_info, existing)
            if same:
                return existing
            if not overwrite:
                why = "other content" if same is False else "content that can't be compared"
                raise DestinationExists(
                    f"{dst} already exists with {why} than {src}; not overwritten"
                )
        self._server_copy(src, src_info, dst)
        copied = self.head(dst)
        verdict = same_content(src_info, copied)
        if verdict is False:
            self._delete_quietly(dst)
            raise ChecksumMismatch(
                f"the copy of {src} at {dst} does not match its source (size or checksum); "
                "the copy was removed"
            )
        if verdict is None:
            logger.warning("copy %s -> %s verified by size only", src, dst)
        return copied

    def check_access(self, prefix: ObjectRef) -> list[str]:
        """Problems found listing, writing, reading back and deleting a probe under ``prefix``.

        Empty when all is fine. Messages never contain a secret.
        """
        self._check_scheme(prefix)
        problems: list[str] = []

        def attempt(step: str, action: Callable[[], Any]) -> BaseException | None:
            try:
                action()
            except BucketError as exc:
                problems.append(f"{step}: {self.config.redact(exc.message)}")
                return exc
            except Exception as exc:  # never let a surprise escape a credentials check
                logger.error(
                    "unexpected %s while checking access to %s", type(exc).__name__, prefix
                )
                problems.append(f"{step}: unexpected {type(exc).__name__}")
                return exc
            return None

        if isinstance(attempt("list", lambda: self._list(prefix, 1)), BucketNotFound):
            return problems
        probe = prefix.child(f".ferry-access-check-{uuid.uuid4().hex}")
        payload = b"ferry access check\n"
        if attempt(
            "write", lambda: self.put_stream(probe, io.BytesIO(payload), len(payload), "text/plain")
        ):
            return problems

        def read_back() -> None:
            if self.read_bytes(probe) != payload:
                raise BucketError("read back other bytes than were written")

        attempt("read", read_back)

        def remove() -> None:
            self.delete(probe)
            if self.exists(probe):
                raise BucketError("the probe object is still there after deleting it")

        attempt("delete", remove)
        return problems


# ---------------------------------------------------------------------------------------------
# S3


class S3Bucket(BucketClient):
    scheme = "s3"

    def __init__(self, config: BucketConfig) -> None:
        super().__init__(config)
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        addressing = config.addressing_style or ("path" if config.endpoint_url else "auto")
        region = config.region or ("us-east-1" if config.endpoint_url else None)
        try:
            session = boto3.session.Session(
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                aws_session_token=config.session_token,
                region_name=region,
            )
            self._client = session.client(
                "s3",
                endpoint_url=config.endpoint_url,
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": addressing},
                    connect_timeout=config.connect_timeout_s,
                    read_timeout=config.read_timeout_s,
                    retries={"max_attempts": config.max_attempts, "mode": "standard"},
                    max_pool_connections=max(10, config.max_concurrency * 2),
                ),
            )
        except (BotoCoreError, ValueError) as exc:
            raise InvalidBucketConfig(
                f"the S3 settings can't be used ({type(exc).__name__}): check the endpoint URL "
                "and region"
            ) from None
        self._transfer = TransferConfig(
            multipart_threshold=config.multipart_threshold,
            multipart_chunksize=config.chunk_size,
            max_concurrency=config.max_concurrency,
            use_threads=config.max_concurrency > 1,
        )
        # At most this many parts are read ahead into memory (s3transfer's default is 10).
        self._transfer.max_in_memory_upload_chunks = config.max_concurrency
        self._where = f" at {config.endpoint_url}" if config.endpoint_url else ""

    @property
    def boto_client(self) -> Any:
        """The underlying boto3 client (for tests and benchmarks; don't patch it)."""
        return self._client

    # --- errors ---------------------------------------------------------------------------

    def _error(self, exc: Exception, ref: ObjectRef, action: str) -> BucketError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = self._where
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            http = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in ("NoSuchBucket",):
                return BucketNotFound(f"S3 bucket '{ref.bucket}' does not exist{where}")
            if code in ("NoSuchKey", "NotFound", "404") or http == 404:
                return ObjectNotFound(f"{ref} does not exist{where}")
            if code in (
                "AccessDenied",
                "SignatureDoesNotMatch",
                "InvalidAccessKeyId",
                "InvalidToken",
                "ExpiredToken",
                "AllAccessDisabled",
                "403",
                "Forbidden",
            ) or http in (401, 403):
                return BucketAccessDenied(
                    f"S3{where} refused to {action} {ref} ({code or http}): check the "
                    "credentials (key id and secret) and their permissions"
                )
            if code in ("PreconditionFailed", "412") or http == 412:
                return BucketError(
                    f"{ref} changed while being {action} (precondition failed)",
                    code="object_changed",
                    status_code=HTTPStatus.CONFLICT.value,
                )
            if code in ("SlowDown", "ServiceUnavailable", "503") or http >= 500:
                return BucketUnavailable(
                    f"S3{where} could not {action} {ref} right now ({code or http})"
                )
            return BucketError(f"S3{where} could not {action} {ref} ({code or http})")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return BucketAccessDenied(
                f"no usable S3 credentials to {action} {ref}: configure a key or an instance role"
            )
        if isinstance(exc, ConnectionError | HTTPClientError):
            return BucketUnavailable(f"S3{where} is unreachable (while trying to {action} {ref})")
        if isinstance(exc, BotoCoreError):
            return BucketError(f"S3{where} could not {action} {ref} ({type(exc).__name__})")
        return BucketError(f"could not {action} {ref} ({type(exc).__name__})")

    @contextlib.contextmanager
    def _errors(self, ref: ObjectRef, action: str) -> Iterator[None]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except BucketError:
            raise
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            cause: Exception = exc
            while isinstance(cause, Boto3Error):  # boto3 wraps some errors; use the inner one
                inner = cause.__cause__ or cause.__context__
                if not isinstance(inner, ClientError | BotoCoreError):
                    break
                cause = inner
            error = self._error(cause, ref, action)
            if isinstance(error, ObjectNotFound) and self._bucket_missing(ref.bucket):
                error = BucketNotFound(f"S3 bucket '{ref.bucket}' does not exist{self._where}")
            raise error from None

    def _bucket_missing(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return code in ("404", "NoSuchBucket", "NotFound")
        except Exception:
            return False
        return False

    # --- objects --------------------------------------------------------------------------

    def head(self, ref: ObjectRef) -> ObjectInfo:
        self._check_scheme(ref)
        ref.require_key()
        with self._errors(ref, "read"):
            resp = self._client.head_object(Bucket=ref.bucket, Key=ref.key, ChecksumMode="ENABLED")
        return self._info(resp)

    @staticmethod
    def _info(resp: dict[str, Any]) -> ObjectInfo:
        etag = str(resp.get("ETag") or "").strip('"') or None
        md5 = None
        if etag and _HEX32.fullmatch(etag) and resp.get("ServerSideEncryption") != "aws:kms":
            md5 = etag
        metadata = {str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()}
        server_sha256 = None
        raw = resp.get("ChecksumSHA256")
        if raw and "-" not in raw and resp.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            server_sha256 = _b64_to_hex(raw)
        return ObjectInfo(
            size=int(resp.get("ContentLength", 0)),
            etag=etag,
            md5=md5,
            sha256=_valid_sha256(metadata.get(SHA256_METADATA_KEY)) or server_sha256,
            server_sha256=server_sha256,
            content_type=resp.get("ContentType"),
            metadata=metadata,
            version=resp.get("VersionId"),
        )

    def _upload(
        self,
        ref: ObjectRef,
        reader: HashingReader,
        size: int,
        content_type: str,
        metadata: dict[str, str],
    ) -> None:
        extra = {"ContentType": content_type, "Metadata": metadata}
        with self._errors(ref, "write"):
            self._client.upload_fileobj(
                reader, ref.bucket, ref.key, ExtraArgs=extra, Config=self._transfer
            )

    def _record_sha256(self, ref: ObjectRef, info: ObjectInfo, sha256: str) -> ObjectInfo:
        metadata = {**info.metadata, SHA256_METADATA_KEY: sha256}
        self._copy_with_metadata(ref, info, ref, metadata)
        return self.head(ref)

    def open_read(
        self, ref: ObjectRef, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        self._check_scheme(ref)
        ref.require_key()
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if start is not None or end is not None:
            kwargs["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        with self._errors(ref, "read"):
            resp = self._client.get_object(**kwargs)
        return self._chunks(resp["Body"], ref)

    def _chunks(self, body: Any, ref: ObjectRef) -> Iterator[bytes]:
        try:
            with self._errors(ref, "read"):
                yield from body.iter_chunks(self.config.chunk_size)
        finally:
            body.close()

    def delete(self, ref: ObjectRef) -> None:
        self._check_scheme(ref)
        ref.require_key()
        with self._errors(ref, "delete"):
            self._client.delete_object(Bucket=ref.bucket, Key=ref.key)

    def _list(self, prefix: ObjectRef, limit: int) -> list[str]:
        with self._errors(prefix, "list"):
            resp = self._client.list_objects_v2(
                Bucket=prefix.bucket, Prefix=prefix.key, MaxKeys=limit
            )
        return [item["Key"] for item in resp.get("Contents", [])]

    # --- copies ---------------------------------------------------------------------------

    def _server_copy(self, src: ObjectRef, src_info: ObjectInfo, dst: ObjectRef) -> None:
        metadata = dict(src_info.metadata)
        if src_info.sha256:
            metadata[SHA256_METADATA_KEY] = src_info.sha256
        elif src_info.etag:
            metadata[SOURCE_ETAG_METADATA_KEY] = src_info.etag
        self._copy_with_metadata(src, src_info, dst, metadata)

    def _copy_with_metadata(
        self, src: ObjectRef, src_info: ObjectInfo, dst: ObjectRef, metadata: dict[str, str]
    ) -> None:
        source = {"Bucket": src.bucket, "Key": src.key}
        if src_info.version:
            source["VersionId"] = src_info.version
        content_type = src_info.content_type or "binary/octet-stream"
        if_match = {"CopySourceIfMatch": f'"{src_info.etag}"'} if src_info.etag else {}
        threshold = min(self.config.copy_multipart_threshold, S3_MAX_COPY_OBJECT_SIZE)
        if src_info.size <= threshold:
            with self._errors(dst, "copy to"):
                self._client.copy_object(
                    Bucket=dst.bucket,
                    Key=dst.key,
                    CopySource=source,
                    MetadataDirective="REPLACE",
                    Metadata=metadata,
                    ContentType=content_type,
                    # The server computes a full-object sha256 of the copy (where supported),
                    # which the verification then compares with the source's recorded one.
                    ChecksumAlgorithm="SHA256",
                    **if_match,
                )
            return
        part_size = max(self.config.copy_part_size, -(-src_info.size // S3_MAX_PARTS))
        part_size = min(part_size, S3_MAX_PART_SIZE)
        with self._errors(dst, "copy to"):
            upload_id = self._client.create_multipart_upload(
                Bucket=dst.bucket, Key=dst.key, Metadata=metadata, ContentType=content_type
            )["UploadId"]
        try:
            ranges = [
                (number, offset, min(offset + part_size, src_info.size) - 1)
                for number, offset in enumerate(range(0, src_info.size, part_size), start=1)
            ]

            def copy_part(item: tuple[int, int, int]) -> dict[str, Any]:
                number, first, last = item
                with self._errors(dst, "copy to"):
                    resp = self._client.upload_part_copy(
                        Bucket=dst.bucket,
                        Key=dst.key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=source,
                        CopySourceRange=f"bytes={first}-{last}",
                        **if_match,
                    )
                return {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}

            workers = max(1, min(self.config.max_concurrency, len(ranges)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(copy_part, ranges))
            with self._errors(dst, "copy to"):
                self._client.complete_multipart_upload(
                    Bucket=dst.bucket,
                    Key=dst.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(dst, upload_id)
            raise

    def _abort(self, ref: ObjectRef, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=ref.bucket, Key=ref.key, UploadId=upload_id)
        except Exception:
            logger.warning("could not abort multipart upload %s of %s", upload_id, ref)

    # --- signed URLs ----------------------------------------------------------------------

    def presign_put(
        self,
        ref: ObjectRef,
        expires_s: int,
        content_type: str,
        size: int | None = None,
        *,
        sha256: str | None = None,
    ) -> dict[str, Any]:
        """A presigned PUT (SigV4). ``Content-Type`` is signed, and so is ``Content-Length``
        when ``size`` is given: the body must be exactly ``size`` bytes. With ``sha256``, the
        client must also send ``x-amz-checksum-sha256`` (signed) and the server refuses a body
        with another checksum. S3 and SeaweedFS check all of these; some S3-compatible servers
        (moto) check none: verify the object on completion anyway."""
        self._check_scheme(ref)
        ref.require_key()
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, "ContentType": content_type}
        if size is not None:
            params["ContentLength"] = int(size)
        headers = {"Content-Type": content_type}
        declared = _valid_sha256(sha256)
        if sha256 and not declared:
            raise BucketError(
                "sha256 must be 64 hex digits", status_code=400, code="invalid_sha256"
            )
        if declared:
            checksum = base64.b64encode(bytes.fromhex(declared)).decode()
            params["ChecksumSHA256"] = checksum
            headers["x-amz-checksum-sha256"] = checksum
        with self._errors(ref, "sign an upload to"):
            url = self._client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=_check_expiry(expires_s)
            )
        return {"url": url, "method": "PUT", "headers": headers, "kind": "presigned_put"}

    def presign_multipart(
        self,
        ref: ObjectRef,
        size: int,
        part_size: int,
        expires_s: int,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """Start a multipart upload and sign a PUT URL per part.

        Returns ``{"upload_id", "part_size", "parts": [{"part_number", "url", "size"}]}``. The
        client PUTs each part's bytes and keeps each response's ``ETag`` header (the bucket's
        CORS rules must expose it to browsers), then Ferry calls :meth:`complete_multipart`.
        """
        self._check_scheme(ref)
        ref.require_key()
        if not S3_MIN_PART_SIZE <= part_size <= S3_MAX_PART_SIZE:
            raise BucketError(
                "part_size must be between 5 MiB and 5 GiB", status_code=400, code="invalid_part"
            )
        count = max(1, -(-size // part_size))
        if count > S3_MAX_PARTS:
            raise BucketError(
                f"{size} bytes in parts of {part_size} would need more than {S3_MAX_PARTS} parts",
                status_code=400,
                code="invalid_part",
            )
        expires = _check_expiry(expires_s)
        with self._errors(ref, "start an upload to"):
            upload_id = self._client.create_multipart_upload(
                Bucket=ref.bucket, Key=ref.key, ContentType=content_type
            )["UploadId"]
        parts = self.presign_parts(ref, upload_id, size, part_size, range(1, count + 1), expires)
        return {"upload_id": upload_id, "part_size": part_size, "method": "PUT", "parts": parts}

    def presign_parts(
        self,
        ref: ObjectRef,
        upload_id: str,
        size: int,
        part_size: int,
        numbers: Iterable[int],
        expires_s: int,
    ) -> list[dict[str, Any]]:
        """Signed PUT URLs for some parts of a started multipart upload (again, when the
        first ones expired before the client got to them)."""
        expires = _check_expiry(expires_s)
        count = max(1, -(-size // part_size))
        parts = []
        with self._errors(ref, "sign parts of an upload to"):
            for number in numbers:
                if not 1 <= number <= count:
                    raise BucketError(
                        f"part {number} does not exist (parts 1 to {count})",
                        status_code=400,
                        code="invalid_part",
                    )
                url = self._client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": ref.bucket,
                        "Key": ref.key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                    },
                    ExpiresIn=expires,
                )
                first = (number - 1) * part_size
                parts.append(
                    {"part_number": number, "url": url, "size": min(part_size, size - first)}
                )
        return parts

    def complete_multipart(
        self, ref: ObjectRef, upload_id: str, parts: list[dict[str, Any]]
    ) -> ObjectInfo:
        """Finish a :meth:`presign_multipart` upload: ``parts`` are
        ``{"part_number", "etag"}`` as the client collected them."""
        self._check_scheme(ref)
        numbered = sorted((int(p["part_number"]), str(p["etag"])) for p in parts)
        ordered = [{"PartNumber": number, "ETag": etag} for number, etag in numbered]
        with self._errors(ref, "complete the upload of"):
            self._client.complete_multipart_upload(
                Bucket=ref.bucket,
                Key=ref.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": ordered},
            )
        return self.head(ref)

    def abort_multipart(self, ref: ObjectRef, upload_id: str) -> None:
        self._check_scheme(ref)
        with self._errors(ref, "abort the upload of"):
            self._client.abort_multipart_upload(Bucket=ref.bucket, Key=ref.key, UploadId=upload_id)

    def presign_get(
        self,
        ref: ObjectRef,
        expires_s: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        self._check_scheme(ref)
        ref.require_key()
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        with self._errors(ref, "sign a download of"):
            return str(
                self._client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=_check_expiry(expires_s)
                )
            )


# ---------------------------------------------------------------------------------------------
# Google Cloud Storage


class GCSBucket(BucketClient):
    scheme = "gs"

    def __init__(self, config: BucketConfig) -> None:
        super().__init__(config)
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials, Signing
        from google.cloud import storage
        from google.cloud.storage.retry import DEFAULT_RETRY

        emulator = os.environ.get("STORAGE_EMULATOR_HOST") or None
        endpoint = config.api_endpoint or emulator
        if endpoint and "://" not in endpoint:
            endpoint = "http://" + endpoint
        self._endpoint = endpoint
        anonymous = config.anonymous
        if anonymous is None:
            anonymous = bool(emulator and not config.api_endpoint and not config.credentials_json)
        key_credentials = None
        if config.credentials_json:
            from google.oauth2 import service_account

            try:
                info = json.loads(config.credentials_json)
                key_credentials = service_account.Credentials.from_service_account_info(
                    info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidBucketConfig(
                    "the GCS credentials are not a valid service-account key (JSON)",
                    code="invalid_credentials",
                ) from exc
        credentials: Any = AnonymousCredentials() if anonymous else key_credentials
        project = config.project or (key_credentials.project_id if key_credentials else None)
        if anonymous:
            project = project or "ferry"
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        try:
            self._client = storage.Client(
                project=project, credentials=credentials, client_options=options
            )
        except Exception as exc:
            raise BucketAccessDenied(
                f"no usable GCS credentials ({type(exc).__name__}): configure a service-account "
                "key or application-default credentials"
            ) from None
        signer = key_credentials or (None if anonymous else self._client._credentials)
        self._signer = signer if isinstance(signer, Signing) else None
        self._retry = DEFAULT_RETRY.with_timeout(config.retry_deadline_s)
        self._timeout = (config.connect_timeout_s, config.read_timeout_s)
        self._where = f" at {endpoint}" if endpoint else ""

    @property
    def gcs_client(self) -> Any:
        """The underlying google-cloud-storage client (for tests; don't patch it)."""
        return self._client

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    # --- errors ---------------------------------------------------------------------------

    def _error(self, exc: Exception, ref: ObjectRef, action: str) -> BucketError:
        import requests
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as aexc

        where = self._where
        if isinstance(exc, gexc.RetryError):
            cause = exc.cause
            if isinstance(cause, Exception) and cause is not exc:
                return self._error(cause, ref, action)
            return BucketUnavailable(f"GCS{where} did not answer in time ({action} {ref})")
        if isinstance(exc, gexc.NotFound):
            return ObjectNotFound(f"{ref} does not exist{where}")
        if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
            return BucketAccessDenied(
                f"GCS{where} refused to {action} {ref} ({exc.code}): check the credentials "
                "and their permissions"
            )
        if isinstance(exc, gexc.PreconditionFailed):
            return BucketError(
                f"{ref} changed while being {action} (precondition failed)",
                code="object_changed",
                status_code=HTTPStatus.CONFLICT.value,
            )
        if isinstance(exc, gexc.ServerError | gexc.TooManyRequests):
            return BucketUnavailable(f"GCS{where} could not {action} {ref} now ({exc.code})")
        if isinstance(exc, gexc.GoogleAPICallError):
            return BucketError(f"GCS{where} could not {action} {ref} ({exc.code})")
        if isinstance(exc, aexc.DefaultCredentialsError | aexc.RefreshError):
            return BucketAccessDenied(
                f"the GCS credentials could not be used to {action} {ref} ({type(exc).__name__})"
            )
        if isinstance(exc, aexc.TransportError | requests.exceptions.RequestException):
            return BucketUnavailable(f"GCS{where} is unreachable (while trying to {action} {ref})")
        return BucketError(f"GCS{where} could not {action} {ref} ({type(exc).__name__})")

    @contextlib.contextmanager
    def _errors(self, ref: ObjectRef, action: str) -> Iterator[None]:
        import requests
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as aexc
        from google.cloud.storage.exceptions import DataCorruption

        try:
            yield
        except BucketError:
            raise
        except DataCorruption:
            raise ChecksumMismatch(
                f"GCS{self._where} reported other checksums than the bytes sent or received "
                f"({action} {ref})"
            ) from None
        except (
            gexc.GoogleAPIError,
            aexc.GoogleAuthError,
            requests.exceptions.RequestException,
            ConnectionError,
            TimeoutError,
        ) as exc:
            error = self._error(exc, ref, action)
            if isinstance(error, ObjectNotFound) and self._bucket_missing(ref.bucket):
                error = BucketNotFound(f"GCS bucket '{ref.bucket}' does not exist{self._where}")
            raise error from None

    def _bucket_missing(self, bucket: str) -> bool:
        try:
            return not self._client.bucket(bucket).exists(retry=None, timeout=self._timeout)
        except Exception:
            return False

    # --- objects --------------------------------------------------------------------------

    def _blob(self, ref: ObjectRef) -> Any:
        return self._client.bucket(ref.bucket).blob(ref.key)

    def head(self, ref: ObjectRef) -> ObjectInfo:
        self._check_scheme(ref)
        ref.require_key()
        with self._errors(ref, "read"):
            blob = self._client.bucket(ref.bucket).get_blob(
                ref.key, retry=self._retry, timeout=self._timeout
            )
            if blob is None:
                if self._bucket_missing(ref.bucket):
                    raise BucketNotFound(f"GCS bucket '{ref.bucket}' does not exist{self._where}")
                raise ObjectNotFound(f"{ref} does not exist{self._where}")
        return self._info(blob)

    @staticmethod
    def _info(blob: Any) -> ObjectInfo:
        metadata = {str(k): str(v) for k, v in (blob.metadata or {}).items() if v is not None}
        return ObjectInfo(
            size=int(blob.size or 0),
            etag=blob.etag,
            md5=_b64_to_hex(blob.md5_hash),
            crc32c=_b64_to_hex(blob.crc32c),
            sha256=_valid_sha256(metadata.get(SHA256_METADATA_KEY)),
            content_type=blob.content_type,
            metadata=metadata,
            version=str(blob.generation) if blob.generation is not None else None,
        )

    def _upload(
        self,
        ref: ObjectRef,
        reader: HashingReader,
        size: int,
        content_type: str,
        metadata: dict[str, str],
    ) -> None:
        blob = self._blob(ref)
        if metadata:
            blob.metadata = metadata
        if size > self.config.multipart_threshold:
            blob.chunk_size = self.config.chunk_size  # resumable, one chunk in memory at a time
        with self._errors(ref, "write"):
            # No automatic retry: a retried chunk would need the stream rewound.
            blob.upload_from_file(
                reader,
                size=size,
                content_type=content_type,
                rewind=False,
                retry=None,
                timeout=self._timeout,
            )

    def _record_sha256(self, ref: ObjectRef, info: ObjectInfo, sha256: str) -> ObjectInfo:
        blob = self._blob(ref)
        blob.metadata = {**info.metadata, SHA256_METADATA_KEY: sha256}
        with self._errors(ref, "update"):
            generation = int(info.version) if info.version else None
            blob.patch(if_generation_match=generation, retry=self._retry, timeout=self._timeout)
        return self._info(blob)

    def open_read(
        self, ref: ObjectRef, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        info = self.head(ref)  # fails now, not on the first chunk, and pins the generation
        first = start or 0
        last = info.size - 1 if end is None else min(end, info.size - 1)
        blob = self._client.bucket(ref.bucket).blob(
            ref.key, generation=int(info.version) if info.version else None
        )
        return self._chunks(blob, ref, first, last)

    def _chunks(self, blob: Any, ref: ObjectRef, first: int, last: int) -> Iterator[bytes]:
        offset = first
        while offset <= last:
            stop = min(offset + self.config.chunk_size, last + 1) - 1
            with self._errors(ref, "read"):
                data = blob.download_as_bytes(
                    start=offset,
                    end=stop,
                    checksum=None,
                    retry=self._retry,
                    timeout=self._timeout,
                )
            if not data:
                break
            offset += len(data)
            yield data

    def delete(self, ref: ObjectRef) -> None:
        self._check_scheme(ref)
        ref.require_key()
        from google.api_core import exceptions as gexc

        with self._errors(ref, "delete"):
            try:
                self._blob(ref).delete(retry=self._retry, timeout=self._timeout)
            except gexc.NotFound:
                if self._bucket_missing(ref.bucket):
                    raise BucketNotFound(
                        f"GCS bucket '{ref.bucket}' does not exist{self._where}"
                    ) from None

    def _list(self, prefix: ObjectRef, limit: int) -> list[str]:
        with self._errors(prefix, "list"):
            try:
                blobs = self._client.list_blobs(
                    prefix.bucket,
                    prefix=prefix.key or None,
                    max_results=limit,
                    retry=self._retry,
                    timeout=self._timeout,
                )
                return [blob.name for blob in blobs]
            except Exception as exc:
                from google.api_core import exceptions as gexc

                if isinstance(exc, gexc.NotFound):
                    raise BucketNotFound(
                        f"GCS bucket '{prefix.bucket}' does not exist{self._where}"
                    ) from None
                raise

    def _server_copy(self, src: ObjectRef, src_info: ObjectInfo, dst: ObjectRef) -> None:
        source = self._client.bucket(src.bucket).blob(src.key)
        target = self._blob(dst)
        generation = int(src_info.version) if src_info.version else None
        token: str | None = None
        with self._errors(dst, "copy to"):
            while True:  # large or cross-location rewrites come back in several rounds
                token, _done, _total = target.rewrite(
                    source,
                    token=token,
                    if_source_generation_match=generation,
                    retry=self._retry,
                    timeout=self._timeout,
                )
                if token is None:
                    break

    # --- signed URLs ----------------------------------------------------------------------

    def _signed_url(self, ref: ObjectRef, **kwargs: Any) -> str:
        if self._signer is None:
            raise SigningUnavailable(
                f"the GCS credentials for {ref.bucket} can't sign URLs (anonymous or token-only); "
                "use a service-account key, or let Ferry stream the bytes"
            )
        extra: dict[str, Any] = {}
        if self._endpoint:
            extra["api_access_endpoint"] = self._endpoint
        with self._errors(ref, "sign a URL for"):
            return str(
                self._blob(ref).generate_signed_url(
                    version="v4", credentials=self._signer, **extra, **kwargs
                )
            )

    def presign_put(
        self,
        ref: ObjectRef,
        expires_s: int,
        content_type: str,
        size: int | None = None,
        *,
        sha256: str | None = None,
        origin: str | None = None,
    ) -> dict[str, Any]:
        """A v4 signed PUT URL when the credentials can sign; else a resumable upload session
        (``kind == "resumable_session"``; ``origin`` is the browser's origin for CORS). GCS
        can't check a sha256 on upload: verify the object on completion (md5/crc32c)."""
        self._check_scheme(ref)
        ref.require_key()
        expires = _check_expiry(expires_s)
        headers = {"Content-Type": content_type}
        if self._signer is not None:
            url = self._signed_url(
                ref,
                expiration=datetime.timedelta(seconds=expires),
                method="PUT",
                content_type=content_type,
            )
            return {"url": url, "method": "PUT", "headers": headers, "kind": "signed_url"}
        with self._errors(ref, "start an upload to"):
            url = self._blob(ref).create_resumable_upload_session(
                content_type=content_type,
                size=size,
                origin=origin,
                timeout=self._timeout,
                retry=self._retry,
            )
        return {"url": url, "method": "PUT", "headers": headers, "kind": "resumable_session"}

    def presign_get(
        self,
        ref: ObjectRef,
        expires_s: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        self._check_scheme(ref)
        ref.require_key()
        kwargs: dict[str, Any] = {
            "expiration": datetime.timedelta(seconds=_check_expiry(expires_s)),
            "method": "GET",
        }
        if filename:
            kwargs["response_disposition"] = content_disposition(filename)
        if content_type:
            kwargs["response_type"] = content_type
        return self._signed_url(ref, **kwargs)


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


def _write_local(
    reader: ChunkReader, path: Path, size: int, expected_sha256: str | None, source: str
) -> ObjectInfo:
    path.parent.mkdir(parents=True, exist_ok=True)
    hashing = HashingReader(reader)
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=path.parent)
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
