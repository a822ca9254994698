"""Google Cloud Storage."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from .base import BucketClient
from .config import BucketConfig
from .errors import (
    BucketAccessDenied,
    BucketError,
    BucketNotFound,
    BucketUnavailable,
    ChecksumMismatch,
    InvalidBucketConfig,
    ObjectNotFound,
    SigningUnavailable,
)
from .limits import SHA256_METADATA_KEY
from .refs import ObjectInfo, ObjectRef, content_disposition
from .streams import HashingReader, b64_to_hex, check_expiry, valid_sha256


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
            md5=b64_to_hex(blob.md5_hash),
            crc32c=b64_to_hex(blob.crc32c),
            sha256=valid_sha256(metadata.get(SHA256_METADATA_KEY)),
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
        expires = check_expiry(expires_s)
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
            "expiration": datetime.timedelta(seconds=check_expiry(expires_s)),
            "method": "GET",
        }
        if filename:
            kwargs["response_disposition"] = content_disposition(filename)
        if content_type:
            kwargs["response_type"] = content_type
        return self._signed_url(ref, **kwargs)
