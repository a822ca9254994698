"""Sizes and limits the bucket clients share."""

from __future__ import annotations

import re

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

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX32 = re.compile(r"[0-9a-f]{32}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
