"""The interface every bucket client implements (:class:`BucketClient`)."""

from __future__ import annotations

import io
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, ClassVar

from .config import BucketConfig
from .errors import BucketError, BucketNotFound, ChecksumMismatch, DestinationExists, ObjectNotFound
from .limits import SHA256_METADATA_KEY
from .refs import ObjectInfo, ObjectRef, same_content
from .streams import HashingReader, Readable, is_seekable, sha256_of_seekable, valid_sha256

logger = logging.getLogger(__name__)


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
        declared = self._declared_sha256(fileobj, size, sha256)
        meta = dict(metadata or {})
        if declared:
            meta[SHA256_METADATA_KEY] = declared
        reader = HashingReader(fileobj, limit=size)
        written = self._upload_counting(ref, reader, size, content_type, meta)
        problem = _sent_bytes_problem(reader, size, declared)
        if problem:
            if written:
                self._delete_quietly(ref)
            raise ChecksumMismatch(f"upload to {ref} failed its check ({problem}); nothing kept")
        info = self._stored_as_sent(ref, size, reader.sha256)
        if info.sha256 is None:
            info = self._record_sha256(ref, info, reader.sha256)
        return info

    def _declared_sha256(self, fileobj: Readable, size: int, sha256: str | None) -> str | None:
        """The sha256 the bytes must have: the one given (checked for shape), else a seekable
        ``fileobj``'s, hashed in a first pass; ``None`` for a plain stream."""
        if size < 0:
            raise BucketError("size must not be negative", status_code=400, code="invalid_size")
        declared = valid_sha256(sha256)
        if sha256 and not declared:
            raise BucketError(
                "sha256 must be 64 hex digits", status_code=400, code="invalid_sha256"
            )
        if declared is None and is_seekable(fileobj):
            declared = sha256_of_seekable(fileobj, size, self.config.chunk_size)
        return declared

    def _upload_counting(
        self,
        ref: ObjectRef,
        reader: HashingReader,
        size: int,
        content_type: str | None,
        meta: dict[str, str],
    ) -> bool:
        """Upload through ``reader``; whether an object was written. A stream shorter than
        ``size`` is left for the caller to report (``reader.count`` tells)."""
        try:
            self._upload(ref, reader, size, content_type or "application/octet-stream", meta)
        except ValueError:  # GCS's client refuses a stream shorter than the size it was told
            if reader.count >= size:
                raise
            return False
        return True

    def _stored_as_sent(self, ref: ObjectRef, size: int, sent_sha256: str) -> ObjectInfo:
        """The stored object's info, once it shows the size sent (and the sha256, when the
        server reports one); otherwise the object is removed and ChecksumMismatch raised."""
        info = self.head(ref)
        if info.size != size or (info.server_sha256 and info.server_sha256 != sent_sha256):
            self._delete_quietly(ref)
            raise ChecksumMismatch(
                f"{ref} does not hold the {size} bytes sent (size {info.size}, or the server's "
                "sha256 differs); removed"
            )
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


def _sent_bytes_problem(reader: HashingReader, size: int, declared: str | None) -> str | None:
    """Why the bytes that went through ``reader`` are not the ones promised (``None`` if they are):
    fewer than ``size``, or another sha256 than ``declared``."""
    if reader.count != size:
        return f"the stream ended after {reader.count} of {size} bytes"
    if declared and reader.sha256 != declared:
        return f"the bytes sent have sha256 {reader.sha256}, not the expected {declared}"
    return None
