"""Bucket errors: :class:`BucketError` subclasses (an ApplicationError) whose messages name the
bucket, key and endpoint but never a secret."""

from __future__ import annotations

from http import HTTPStatus

from ...exceptions import ApplicationError


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
