"""The baseline for API uploads: a bare WSGI app (``application``; ``asgi_application`` for
uvicorn workers) with no Django and no database, that receives a PUT
body as Ferry does (4 MiB reads, sha256 on the way, written to a spool file on the storage
disk) and then stores it: renamed into a folder, or sent to an S3 bucket with boto3's
``upload_file`` (its default transfer settings) and checked with ``head_object``. Run under the
same gunicorn as Ferry by tests/benchmarks/test_bench_buckets.py.

    BARE_DESTINATION   file:///folder or s3://bucket/prefix
    FERRY_S3_*         the S3 server (as Ferry reads them)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from typing import Any

CHUNK = 4 * 1024 * 1024

_s3: Any = None


def s3_client() -> Any:
    global _s3
    if _s3 is None:
        import boto3

        _s3 = boto3.client(
            "s3",
            endpoint_url=os.environ["FERRY_S3_ENDPOINT_URL"],
            region_name=os.environ.get("FERRY_S3_REGION", "us-east-1"),
            aws_access_key_id=os.environ["FERRY_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["FERRY_S3_SECRET_ACCESS_KEY"],
        )
    return _s3


def receive(stream: Any, length: int, folder: str) -> tuple[str, int, str]:
    digest = hashlib.sha256()
    fd, path = tempfile.mkstemp(dir=folder, suffix=".upload")
    received = 0
    with os.fdopen(fd, "wb") as out:
        while received < length:
            chunk = stream.read(min(CHUNK, length - received))
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
    return path, received, digest.hexdigest()


def store(path: str, name: str) -> str:
    destination = os.environ["BARE_DESTINATION"]
    if destination.startswith("file://"):
        target = os.path.join(destination.removeprefix("file://"), name)
        os.replace(path, target)
        return target
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    key = f"{prefix.strip('/')}/{name}".lstrip("/")
    try:
        s3_client().upload_file(path, bucket, key)
    finally:
        os.unlink(path)
    s3_client().head_object(Bucket=bucket, Key=key)
    return f"s3://{bucket}/{key}"


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "PUT":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    path, received, sha256 = receive(environ["wsgi.input"], length, tempfile.gettempdir())
    uri = store(path, f"{uuid.uuid4().hex}.bin")
    body = json.dumps({"size": received, "sha256": sha256, "storage_uri": uri}).encode()
    start_response("201 Created", [("Content-Type", "application/json")])
    return [body]


async def asgi_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same receiver as an ASGI app (for uvicorn workers): the body's messages are hashed
    and spooled as they arrive, then stored as above (in a thread: boto3 blocks)."""
    import asyncio

    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "PUT":
        await _answer(send, 200, b"ok", "text/plain")
        return
    digest = hashlib.sha256()
    fd, path = tempfile.mkstemp(dir=tempfile.gettempdir(), suffix=".upload")
    received = 0
    with os.fdopen(fd, "wb") as out:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
            more = message.get("more_body", False)
    uri = await asyncio.to_thread(store, path, f"{uuid.uuid4().hex}.bin")
    body = json.dumps({"size": received, "sha256": digest.hexdigest(), "storage_uri": uri})
    await _answer(send, 201, body.encode(), "application/json")


async def _answer(send: Any, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
