"""S3 and S3-compatible servers."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from .base import BucketClient
from .config import BucketConfig
from .errors import (
    BucketAccessDenied,
    BucketError,
    BucketNotFound,
    BucketUnavailable,
    InvalidBucketConfig,
    ObjectNotFound,
)
from .limits import (
    HEX32,
    S3_MAX_COPY_OBJECT_SIZE,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    SHA256_METADATA_KEY,
    SOURCE_ETAG_METADATA_KEY,
)
from .refs import ObjectInfo, ObjectRef, content_disposition
from .streams import HashingReader, b64_to_hex, check_expiry, valid_sha256

logger = logging.getLogger(__name__)


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
        if etag and HEX32.fullmatch(etag) and resp.get("ServerSideEncryption") != "aws:kms":
            md5 = etag
        metadata = {str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()}
        server_sha256 = None
        raw = resp.get("ChecksumSHA256")
        if raw and "-" not in raw and resp.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            server_sha256 = b64_to_hex(raw)
        return ObjectInfo(
            size=int(resp.get("ContentLength", 0)),
            etag=etag,
            md5=md5,
            sha256=valid_sha256(metadata.get(SHA256_METADATA_KEY)) or server_sha256,
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
        declared = valid_sha256(sha256)
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
                "put_object", Params=params, ExpiresIn=check_expiry(expires_s)
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
        expires = check_expiry(expires_s)
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
        expires = check_expiry(expires_s)
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
                    "get_object", Params=params, ExpiresIn=check_expiry(expires_s)
                )
            )
