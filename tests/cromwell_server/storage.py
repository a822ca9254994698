"""S3 transfers of the test server: inputs in, outputs and logs out (boto3, path-style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from .config import ServerConfig


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3:// URI: {uri}")
    return parts.netloc, parts.path.lstrip("/")


class S3Transfers:
    """Downloads and uploads against the configured S3 endpoint."""

    def __init__(self, config: ServerConfig) -> None:
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=config.s3_endpoint,
            region_name=config.s3_region,
            aws_access_key_id=config.s3_access_key_id,
            aws_secret_access_key=config.s3_secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            ),
        )

    def download(self, uri: str, destination: Path) -> None:
        bucket, key = split_s3_uri(uri)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if uri.endswith("/"):
            self._download_prefix(bucket, key, destination)
        else:
            self._client.download_file(bucket, key, str(destination))

    def _download_prefix(self, bucket: str, prefix: str, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if relative and not relative.endswith("/"):
                    target = destination / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._client.download_file(bucket, item["Key"], str(target))

    def upload(self, path: Path, key: str, bucket: str | None = None) -> str:
        """Upload one file; returns its s3:// URI."""
        bucket = bucket or self.bucket
        self._client.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
