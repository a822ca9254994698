"""End to end: headless Chromium uploads a file straight to a real S3 server and downloads it back,
with Ferry only signing and checking (the bytes never pass through Ferry).

The page (tests/browser/upload.html, plain JS) is served from its own loopback origin; Ferry runs
in-process (pytest-django's ``live_server``) and answers it through CORS; SeaweedFS checks the
presigned URL's signature (method, Content-Type, Content-Length, x-amz-checksum-sha256) and
answers the browser's CORS preflights from the bucket's CORS rules.

Needs Debian's ``chromium`` at /usr/bin/chromium (deploy/system-deps.sh installs it); the
browser playwright would download is never used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.signals import request_started

from api import services
from api.models import File, FileStatus, User
from tests.harness.buckets import S3Server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_DIR = Path(__file__).parents[1] / "browser"
UPLOAD_SIZE = 384 * 1024
# Whatever Ferry receives or sends for one upload (JSON requests and answers, a redirect) stays
# far below the file's size; the file's bytes would not.
FERRY_BODY_LIMIT = 8 * 1024


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """tests/browser/ served by a small static HTTP server on its own loopback port."""
    handler = functools.partial(_QuietHandler, directory=str(PAGE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def bucket_site(settings: Any, seaweedfs: S3Server, page_origin: str) -> str:
    """A fresh SeaweedFS bucket as the site's storage location, open to the page by CORS."""
    bucket = f"browser-{uuid.uuid4().hex[:8]}"
    s3 = seaweedfs.boto3_client()
    s3.create_bucket(Bucket=bucket)
    # "null": a fetch() that Ferry (another origin than the page's) redirects to the bucket
    # reaches the bucket with ``Origin: null`` (the Fetch standard's "tainted origin").
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [page_origin, "null"],
                    "AllowedMethods": ["PUT", "GET"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 60,
                }
            ]
        },
    )
    settings.FERRY_STORAGE_LOCATION = f"s3://{bucket}/ferry"
    settings.FERRY_BUCKETS = {
        "s3": {k: v for k, v in asdict(seaweedfs.config()).items() if v is not None}
    }
    settings.CORS_ALLOWED_ORIGINS = [page_origin]
    return bucket


@dataclass
class FerryBodies:
    """Request bodies Ferry's server received (from each request's Content-Length)."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def record(self, sender: Any, environ: dict[str, Any] | None = None, **_: Any) -> None:
        if environ is None:
            return
        length = str(environ.get("CONTENT_LENGTH") or "0")
        size = int(length) if length.isdigit() else 0
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], size))


@contextlib.contextmanager
def ferry_request_bodies() -> Iterator[FerryBodies]:
    bodies = FerryBodies()
    request_started.connect(bodies.record, weak=False)
    try:
        yield bodies
    finally:
        request_started.disconnect(bodies.record)


@dataclass(frozen=True)
class SeenRequest:
    """One request the page made, as Chromium saw it."""

    origin: str
    method: str
    url: str
    sent: int  # request body bytes
    received: int  # response body bytes
    authorized: bool  # carried an Authorization header

    @classmethod
    def of(cls, request: Any) -> SeenRequest:
        sizes = request.sizes()
        headers = request.all_headers()
        # Chromium reports no body size for a Blob body; its Content-Length tells.
        length = str(headers.get("content-length") or "0")
        sent = max(int(sizes["requestBodySize"]), int(length) if length.isdigit() else 0)
        return cls(
            origin=origin_of(request.url),
            method=request.method,
            url=request.url,
            sent=sent,
            received=int(sizes["responseBodySize"]),
            authorized="authorization" in headers,
        )


@dataclass
class BrowserRun:
    """What the page returned (or why it failed), its requests and its complaints."""

    result: dict[str, Any] | None = None
    error: str = ""
    requests: list[SeenRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [*self.problems]
        lines += [f"{r.method} {r.url} sent {r.sent} got {r.received}" for r in self.requests]
        if self.error:
            lines.insert(0, f"the page failed: {self.error}")
        return "\n".join(lines) or "(no requests, no console output)"


def _watch(page: Any, run: BrowserRun, finished: list[Any]) -> None:
    page.on("requestfinished", lambda r: finished.append(r))
    page.on(
        "requestfailed",
        lambda r: run.problems.append(f"failed ({r.failure}): {r.method} {r.url}"),
    )
    page.on(
        "console",
        lambda m: (
            run.problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: run.problems.append(f"page error: {e}"))


def run_page(page_url: str, function: str, argument: dict[str, Any]) -> BrowserRun:
    """Open ``page_url`` in headless Chromium and await ``function(argument)`` there.

    Playwright's sync API keeps an asyncio loop running in its thread, where Django refuses
    database calls; so the browser lives in a thread of its own, and only plain data comes back.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    run = BrowserRun()

    def drive() -> None:
        finished: list[Any] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                _watch(page, run, finished)
                page.goto(page_url)
                try:
                    run.result = page.evaluate(f"argument => {function}(argument)", argument)
                except PlaywrightError as exc:
                    run.error = exc.message
                run.requests = [SeenRequest.of(r) for r in finished]
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium") as pool:
        pool.submit(drive).result(timeout=120)
    return run


@pytest.fixture
def api_key(transactional_db: Any, bucket_site: str) -> tuple[str, str]:
    """A user's API key and a workspace of theirs (committed: the live server must see them)."""
    user = User.objects.create_user(email="browser@example.org", password="browser-pass-123")
    workspace = services.workspace_create(user=user, name="Browser uploads")
    _token, key = services.api_token_create(user=user, name="browser test")
    return key, str(workspace.pk)


def test_browser_uploads_and_downloads_through_the_bucket_not_ferry(
    live_server: Any,
    page_origin: str,
    bucket_site: str,
    seaweedfs: S3Server,
    api_key: tuple[str, str],
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (deploy/system-deps.sh)")
    key, workspace_id = api_key
    ferry_origin = origin_of(live_server.url)
    bucket_origin = origin_of(seaweedfs.endpoint_url)
    assert len({ferry_origin, bucket_origin, page_origin}) == 3
    with ferry_request_bodies() as bodies:
        run = run_page(
            f"{page_origin}/upload.html",
            "ferryDirectUpload",
            {
                "api": ferry_origin,
                "token": key,
                "workspace": workspace_id,
                "size": UPLOAD_SIZE,
                "name": "browser.bin",
            },
        )
    diagnostics = run.report()
    result = run.result
    assert result is not None, diagnostics

    # The page's view: uploaded, checked, and the same bytes came back from the bucket.
    assert result["secureContext"], diagnostics
    assert result["status"] == "ready", diagnostics
    assert result["pageSha256"], diagnostics
    assert result["ferrySha256"] == result["pageSha256"], diagnostics
    assert origin_of(result["uploadUrl"]) == bucket_origin, diagnostics
    assert result["downloadRedirected"], diagnostics
    assert origin_of(result["downloadUrl"]) == bucket_origin, diagnostics
    assert result["downloadedSize"] == UPLOAD_SIZE, diagnostics
    assert result["sameBytes"], diagnostics
    assert result["downloadedSha256"] == result["pageSha256"], diagnostics

    # Ferry's view: a READY file whose object in the bucket has those bytes.
    stored = File.objects.get(pk=result["fileId"])
    assert stored.status == FileStatus.READY
    assert (stored.size, stored.sha256) == (UPLOAD_SIZE, result["pageSha256"])
    assert stored.storage_uri.startswith(f"s3://{bucket_site}/ferry/")
    object_key = stored.storage_uri.split("/", 3)[3]
    body = seaweedfs.boto3_client().get_object(Bucket=bucket_site, Key=object_key)["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == result["pageSha256"]

    # The point: the file's bytes went between the browser and the bucket, never through Ferry.
    to_ferry = [r for r in run.requests if r.origin == ferry_origin]
    to_bucket = [r for r in run.requests if r.origin == bucket_origin]
    assert to_ferry, diagnostics
    assert to_bucket, diagnostics
    assert all(r.sent < FERRY_BODY_LIMIT for r in to_ferry), diagnostics
    assert all(r.received < FERRY_BODY_LIMIT for r in to_ferry), diagnostics
    assert [r.method for r in to_bucket if r.sent == UPLOAD_SIZE] == ["PUT"], diagnostics
    assert [r.method for r in to_bucket if r.received == UPLOAD_SIZE] == ["GET"], diagnostics
    assert not any(r.authorized for r in to_bucket), "Ferry's API token went to the bucket"
    assert bodies.requests, "Ferry's server saw no requests"
    received = sum(size for *_, size in bodies.requests)
    assert received < FERRY_BODY_LIMIT, f"Ferry received {received} bytes: {bodies.requests}"
