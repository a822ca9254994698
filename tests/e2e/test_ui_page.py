"""End to end: the status page ``/ui/`` in headless Chromium. A person signs in, picks a
workspace, uploads a table, starts the example ``table-filter`` operation from the catalog's
form and sees the job turn succeeded and its result appear, without reloading the page.

Ferry's web side runs in-process (``live_server``) and queues tasks as a web process does (django-q's
inline mode off); a real ``qcluster`` worker runs them, so the page sees the job queued first and
succeeded later. Needs Debian's ``chromium`` and a Docker engine."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django_q.conf import Conf

from api import services
from api.models import File, FileStatus, Role, User
from operations.examples import EXAMPLES_DIR, ensure_base_image
from operations.ingestion import ingest_operation
from operations.models import Job, Operation
from operations.states import JobStatus
from tests.e2e.test_browser_upload import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_worker_restart import kill_tree, start_worker
from tests.harness.docker import ensure_docker

pytestmark = pytest.mark.slow

EMAIL = "ui@example.org"
PASSWORD = "ui-page-pass-12345"
TABLE = b"gene\tscore\nA\t1\nB\t5\nC\t9\n"
WAIT_MS = 90_000  # generous: a loaded 2-core machine runs containers slowly


@pytest.fixture
def table_filter(transactional_db: Any) -> Operation:
    ensure_docker()
    ensure_base_image()
    operation, _ = ingest_operation(str(EXAMPLES_DIR / "table-filter"))
    return operation


@pytest.fixture
def worker(
    transactional_db: Any, storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A ``qcluster`` on the test database; the live server queues tasks for it (as
    FERRY_Q_SYNC=false does for a process started with it). Yields the worker's log."""
    monkeypatch.setattr(Conf, "SYNC", False)
    log = storage_root.parent / "worker.log"
    process = start_worker(storage_root, log)
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_tree(process)


def drive_page(base: str, table: Path, problems: list[str]) -> dict[str, Any]:
    """Everything a person does on the page; returns what the page showed at the end."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text} {m.location}")
                    # No event stream in this tree answers 404: the page polls instead.
                    if m.type == "error" and "/api/events/" not in str(m.location)
                    else None
                ),
            )
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)

            page.goto(f"{base}/ui/")
            page.fill("#sign-in [name=username]", EMAIL)
            page.fill("#sign-in [name=password]", PASSWORD)
            page.click("#sign-in button[type=submit]")
            page.wait_for_url(f"{base}/ui/")
            expect(page.locator("#me")).to_have_text(EMAIL)

            page.select_option("#workspace", label="UI demo")
            page.set_input_files("#upload [name=file]", str(table))
            page.click("#upload button[type=submit]")
            expect(page.locator("#files .file-status")).to_have_text(["ready"])
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))

            page.select_option("#operation", label="table-filter 1.0.0")
            page.select_option("#inputs [name=table]", label="scores.tsv")
            page.fill("#inputs [name=column]", "score")
            page.fill("#inputs [name=min_value]", "5")
            page.click("#start button[type=submit]")
            expect(page.locator("#jobs .job-status")).to_have_text(["succeeded"])
            # The result shows up in the files list and as the job's output, downloadable.
            expect(page.locator("#files tr")).to_have_count(2)
            link = page.locator("#jobs a", has_text="download")
            expect(link).to_have_count(1)
            with page.expect_download() as download_info:
                link.click()
            downloaded = Path(download_info.value.path()).read_bytes()
            return {
                "navigations": navigations,
                "live": page.locator("#live").inner_text(),
                "message": page.locator("#message").inner_text(),
                "downloaded": downloaded,
                "statuses": page.evaluate("window.ferryStatusesShown"),
            }
        finally:
            browser.close()


def test_sign_in_upload_start_a_job_and_watch_it_succeed(
    live_server: Any, table_filter: Operation, worker: Path, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (deploy/system-deps.sh)")
    user = User.objects.create_user(email=EMAIL, password=PASSWORD)
    workspace = services.workspace_create(user=user, name="UI demo")
    other = User.objects.create_user(email="owner@example.org", password=PASSWORD)
    services.member_add(
        workspace=services.workspace_create(user=other, name="Not writable"),
        email=EMAIL,
        role=Role.VIEWER,
    )
    table = tmp_path / "scores.tsv"
    table.write_bytes(TABLE)
    problems: list[str] = []

    # Playwright's sync API runs an event loop in its thread, where Django refuses database
    # calls: the browser gets a thread of its own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium") as pool:
        seen = pool.submit(drive_page, live_server.url, table, problems).result(timeout=300)
    worker_log = worker.read_text(errors="replace")[-5000:] if worker.exists() else ""

    assert not problems, (problems, worker_log)
    assert seen["navigations"] == [], "the page reloaded: " + repr(seen["navigations"])
    assert seen["live"].startswith("Live:"), seen
    assert seen["downloaded"] == b"gene\tscore\nB\t5\nC\t9\n", seen
    job = Job.objects.get(workspace=workspace)
    assert job.status == JobStatus.SUCCEEDED, (job.error_message, job.error_detail, worker_log)
    # The page showed the job before it finished, then saw it change without a reload.
    shown = seen["statuses"][str(job.pk)]
    assert shown[0] in ("queued", "submitted", "running"), shown
    assert shown[-1] == "succeeded", shown
    assert job.inputs["column"] == "score"
    assert job.inputs["min_value"] == 5
    result = File.objects.get(produced_by=job)
    assert result.status == FileStatus.READY


def read_job_form_inputs(base: str) -> str:
    """Sign in through the browsable API's form, open /api/jobs/ and read the job form's inputs
    once the page has filled them in for the chosen operation."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{base}/api-auth/login/?next=/api/jobs/")
            page.fill("[name=username]", EMAIL)
            page.fill("[name=password]", PASSWORD)
            page.click("[type=submit]")
            page.wait_for_url(f"{base}/api/jobs/")
            inputs = page.locator("#post-object-form textarea[name=inputs]")
            expect(inputs).to_have_value(re.compile("min_value"))
            return str(inputs.input_value())
        finally:
            browser.close()


def test_the_browsable_job_form_fills_in_the_operations_inputs(
    live_server: Any, table_filter: Operation
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (deploy/system-deps.sh)")
    user = User.objects.create_user(email=EMAIL, password=PASSWORD)
    services.workspace_create(user=user, name="UI demo")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium") as pool:
        filled = pool.submit(read_job_form_inputs, live_server.url).result(timeout=300)
    assert json.loads(filled) == {"table": "<file id>", "column": "", "min_value": 0}
