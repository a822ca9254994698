"""End to end: a page on another origin, in headless Chromium, uses conditional requests through
CORS: it reads the ETag, gets 304 for If-None-Match, writes with If-Match (200, then 412 once its
tag is stale), uploads with X-Checksum-Sha256 and Idempotency-Key and sends Last-Event-ID. Without
the CORS settings allowing those headers and exposing ETag, the browser refuses these requests
or hides the tag. The page is tests/browser/conditional.html; Ferry runs in-process
(``live_server``). Needs Debian's ``chromium`` (deploy/system-deps.sh)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from api import services
from api.models import User, Workspace
from tests.e2e.test_browser_upload import CHROMIUM, origin_of, page_origin, run_page

pytestmark = pytest.mark.slow

__all__ = ["page_origin"]  # the fixture serving tests/browser/ on its own origin

BODY = b"hello\n"


def test_a_page_on_another_origin_uses_etags_and_if_match(
    transactional_db: Any, live_server: Any, page_origin: str, settings: Any
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (deploy/system-deps.sh)")
    settings.CORS_ALLOWED_ORIGINS = [page_origin]
    user = User.objects.create_user(email="page@example.org", password="page-pass-12345")
    workspace = services.workspace_create(user=user, name="Page")
    _token, key = services.api_token_create(user=user, name="page")
    assert origin_of(live_server.url) != page_origin

    run = run_page(
        f"{page_origin}/conditional.html",
        "ferryConditional",
        {
            "api": origin_of(live_server.url),
            "token": key,
            "workspace": str(workspace.pk),
            "checksum": hashlib.sha256(BODY).hexdigest(),
        },
    )
    diagnostics = run.report()
    result = run.result
    assert result is not None, diagnostics
    assert result["firstStatus"] == 200, diagnostics
    assert result["etag"], "the page can't read ETag: " + diagnostics
    assert result["againStatus"] == 304, diagnostics
    assert result["againEtag"] == result["etag"], diagnostics
    assert result["renamedStatus"] == 200, diagnostics
    assert result["renamedName"] == "Renamed by the page", diagnostics
    assert result["staleStatus"] == 412, diagnostics
    assert result["staleBody"]["code"] == "precondition_failed", diagnostics
    assert result["uploadStatus"] == 201, diagnostics
    assert result["uploadSha256"] == hashlib.sha256(BODY).hexdigest(), diagnostics
    assert result["listedStatus"] == 200, diagnostics
    assert result["listedEtag"], diagnostics
    assert Workspace.objects.get(pk=workspace.pk).name == "Renamed by the page"
