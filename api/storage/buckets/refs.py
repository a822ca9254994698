"""Object references (``s3://bucket/key``, ``gs://bucket/key``) and what a bucket says of an object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

from .errors import InvalidObjectURI
from .limits import BUCKET_NAME, SOURCE_ETAG_METADATA_KEY


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
        if not BUCKET_NAME.fullmatch(self.bucket) or ".." in self.bucket:
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
