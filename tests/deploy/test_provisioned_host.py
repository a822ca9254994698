"""deploy/provision.sh, unmodified, on a Debian bookworm host (a systemd container with the host's
Docker engine, see tests/deploy/host.py), used from outside as a person and a script would:
HTTPS through nginx, static files from nginx, sign-in, an example job to SUCCEEDED and its
result downloaded, the event stream through nginx unbuffered, /ui/ and /api/docs/ in headless
Chromium; then the script run a second time changes nothing. The tests share one host and run
in this order (the second run comes last)."""

from __future__ import annotations

import difflib
import hashlib
import json
import threading
import time
from typing import Any

import pytest
import requests

from tests.deploy.host import ADMIN_EMAIL, ADMIN_PASSWORD, Host, progress
from tests.e2e.test_browser_upload import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow
JOB_TIMEOUT_S = 180  # a loaded 2-core machine runs containers slowly
TABLE = b"sample\tvalue\n" + b"".join(b"S%d\t%d.5\n" % (i, i) for i in range(200))


def get(host: Host, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{host.base}{path}", verify=host.certificate, timeout=30, **kwargs)


def api_session(host: Host) -> requests.Session:
    """A script signed in with a JWT from the token endpoint."""
    answer = requests.post(
        f"{host.base}/api/auth/token/",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        verify=host.certificate,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    session = requests.Session()
    session.verify = host.certificate
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the host's certificate
    session.headers["Authorization"] = f"Bearer {answer.json()['access']}"
    return session


def test_https_answers_and_http_redirects(deployed_host: Host) -> None:
    host = deployed_host
    answer = get(host, "/healthz")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Server"] == "nginx"  # server_tokens off
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # One copy of each security header (Django's are hidden, nginx adds them).
    for header in ("Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options"):
        assert len(answer.raw.headers.getlist(header)) == 1, header
    plain = requests.get(
        f"http://127.0.0.1:{host.http_port}/api/docs/?x=1", allow_redirects=False, timeout=30
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://127.0.0.1/api/docs/?x=1"
    ready = get(host, "/readyz")
    deadline = time.monotonic() + 60
    while ready.status_code != 200 and time.monotonic() < deadline:
        time.sleep(1)
        ready = get(host, "/readyz")
    assert ready.status_code == 200, ready.text


def test_static_files_come_from_nginx(deployed_host: Host) -> None:
    host = deployed_host
    static_root = host.sh("grep ^STATIC_ROOT= /etc/ferry/ferry.env").strip().split("=", 1)[1]
    on_disk = host.sh(f"sha256sum {static_root}/admin/css/base.css").split()[0]
    answer = get(host, "/static/admin/css/base.css")
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == on_disk
    # nginx's own marks: its Cache-Control for /static/, byte ranges, its ETag form.
    assert answer.headers["Cache-Control"] == "public, max-age=86400"
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"].count("-") == 1
    missing = get(host, "/static/no-such-file.css")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")  # nginx's page, not Ferry's JSON


def test_session_sign_in(deployed_host: Host) -> None:
    """A browser's sign-in (session cookie and CSRF over HTTPS, secure cookies)."""
    host = deployed_host
    browser = requests.Session()
    browser.verify = host.certificate
    browser.trust_env = False
    login_page = f"{host.base}/api-auth/login/"
    browser.get(login_page, timeout=30)
    signed_in = browser.post(
        login_page,
        data={
            "username": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "next": "/api/",
        },
        headers={"Referer": login_page},
        timeout=30,
    )
    assert signed_in.status_code == 200
    assert signed_in.url == f"{host.base}/api/"
    assert all(cookie.secure for cookie in browser.cookies)
    me = browser.get(f"{host.base}/api/auth/me/", timeout=30)
    assert me.json()["email"] == ADMIN_EMAIL


def upload_table(api: requests.Session, host: Host, workspace: str) -> dict[str, Any]:
    answer = api.put(
        f"{host.base}/api/files/upload/",
        params={"workspace": workspace, "name": "values.tsv"},
        data=TABLE,
        headers={"X-Checksum-Sha256": hashlib.sha256(TABLE).hexdigest()},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


class EventListener(threading.Thread):
    """Reads the workspace's event stream through nginx, noting when each event arrived."""

    def __init__(self, api: requests.Session, url: str) -> None:
        super().__init__(daemon=True)
        self.api, self.url = api, url
        self.opened = threading.Event()
        self.heard: list[tuple[float, dict[str, Any]]] = []
        self.status = 0
        self.headers: dict[str, str] = {}
        self.stop = False

    def run(self) -> None:
        with self.api.get(self.url, stream=True, timeout=(10, 60)) as stream:
            self.status, self.headers = stream.status_code, dict(stream.headers)
            self.opened.set()
            for line in stream.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("data: "):
                    self.heard.append((time.monotonic(), json.loads(line.removeprefix("data: "))))
                if self.stop:
                    return

    def job_states(self, job_id: str) -> list[str]:
        return [
            e["payload"].get("to", "")
            for _, e in self.heard
            if e.get("kind", "").startswith("job") and str(e.get("job")) == job_id
        ]


def wait_for_job(api: requests.Session, host: Host, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = api.get(f"{host.base}/api/jobs/{job['id']}/", timeout=30).json()
    return job


def test_example_job_runs_and_its_events_stream_through_nginx(deployed_host: Host) -> None:
    host = deployed_host
    api = api_session(host)
    workspace = api.post(f"{host.base}/api/workspaces/", json={"name": "Deploy"}, timeout=30)
    ws = workspace.json()["id"]
    table = upload_table(api, host, ws)
    catalog = {op["name"]: op for op in api.get(f"{host.base}/api/operations/").json()["results"]}
    assert {"table-filter", "table-summary", "table-preview"} <= set(catalog)

    # The stream is open before the job exists: every event of it must come through as it
    # happens, not when the (hour-long) stream ends or a buffer fills.
    listener = EventListener(api, f"{host.base}/api/events/?workspace={ws}")
    listener.start()
    assert listener.opened.wait(30), "the event stream did not open"
    assert listener.status == 200
    assert listener.headers["Content-Type"].startswith("text/event-stream")
    assert "Content-Length" not in listener.headers
    started = time.monotonic()
    job = api.post(
        f"{host.base}/api/jobs/",
        json={
            "operation": catalog["table-filter"]["id"],
            "workspace": ws,
            "inputs": {"table": table["id"], "column": "value", "min_value": 190},
        },
        timeout=30,
    ).json()
    job = wait_for_job(api, host, job)
    assert job["status"] == "succeeded", (job.get("error_message"), job)
    progress(f"table-filter succeeded in {time.monotonic() - started:.1f} s")
    deadline = time.monotonic() + 30
    while "succeeded" not in listener.job_states(job["id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    listener.stop = True
    states = listener.job_states(job["id"])
    assert states[0] == "queued", states
    assert states[-1] == "succeeded", states
    assert listener.is_alive(), "the stream ended: nginx or the app server cut it"

    result = api.get(f"{host.base}/api/files/{job['outputs']['filtered']}/download/", timeout=30)
    assert result.status_code == 200
    lines = result.text.splitlines()
    assert lines[0] == "sample\tvalue"
    assert lines[1:] == [f"S{i}\t{i}.5" for i in range(190, 200)]


def test_wdl_example_runs_on_the_prepared_swarm(deployed_host: Host) -> None:
    host = deployed_host
    api = api_session(host)
    ws = api.post(f"{host.base}/api/workspaces/", json={"name": "WDL"}, timeout=30).json()["id"]
    table = upload_table(api, host, ws)
    catalog = {op["name"]: op for op in api.get(f"{host.base}/api/operations/").json()["results"]}
    job = api.post(
        f"{host.base}/api/jobs/",
        json={
            "operation": catalog["table-preview"]["id"],
            "workspace": ws,
            "inputs": {"table": table["id"], "lines": 3},
        },
        timeout=30,
    ).json()
    assert job["executor"] == "local-miniwdl", job
    job = wait_for_job(api, host, job)
    assert job["status"] == "succeeded", (job.get("error_message"), job)
    preview = api.get(f"{host.base}/api/files/{job['outputs']['preview']}/download/", timeout=30)
    assert preview.text.splitlines() == TABLE.decode().splitlines()[:3]


NETWORK_CHANGED = "ERR_NETWORK_CHANGED"


def open_api_docs(page: Any, base: str) -> None:
    """Swagger UI (its files served from /static/ by nginx) renders the schema it fetched."""
    title = page.locator(".swagger-ui .info .title")
    page.goto(f"{base}/api/docs/")
    title.wait_for()
    if "Ferry" not in title.inner_text():  # "Failed to load API definition."
        raise RuntimeError(f"{NETWORK_CHANGED}? Swagger UI: {title.inner_text()}")


def sign_in_and_browse(browser: Any, base: str) -> list[str]:
    """A person signs in on /ui/, then opens /api/docs/; returns the page errors seen."""
    from playwright.sync_api import expect

    problems: list[str] = []
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.goto(f"{base}/ui/")
        page.fill("#sign-in [name=username]", ADMIN_EMAIL)
        page.fill("#sign-in [name=password]", ADMIN_PASSWORD)
        page.click("#sign-in button[type=submit]")
        page.wait_for_url(f"{base}/ui/")
        expect(page.locator("#me")).to_have_text(ADMIN_EMAIL)
        open_api_docs(page, base)
        expect(page.locator(".opblock-summary-path", has_text="/api/jobs/").first).to_be_visible()
    finally:
        context.close()
    return problems


def test_chromium_signs_in_on_ui_and_opens_api_docs(deployed_host: Host) -> None:
    """Chromium aborts requests in flight when the machine's network changes
    (ERR_NETWORK_CHANGED: containers of jobs and other tests come and go), so a walk cut that
    way is started again, three times at most; any other failure fails at once."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            for attempt in range(1, 4):
                try:
                    problems = sign_in_and_browse(browser, deployed_host.base)
                    break
                except (Error, RuntimeError) as exc:
                    if NETWORK_CHANGED not in str(exc) or attempt == 3:
                        raise
                    progress(f"Chromium: {NETWORK_CHANGED}, walking again")
        finally:
            browser.close()
    assert not problems, problems


def state_of(host: Host) -> dict[str, str]:
    """What a second provisioning run must leave as it was."""
    checks = {
        "config": "sha256sum /etc/ferry/ferry.env /etc/ferry/tls/* "
        "/etc/nginx/sites-available/ferry.conf /etc/nginx/snippets/ferry-proxy.conf "
        "/etc/systemd/system/ferry-*.service /usr/local/bin/ferry-manage",
        "app": "cd /opt/ferry/app && find . -path '*/__pycache__' -prune -o -type f "
        "-printf '%p %s %T@ %m\\n' | sort | sha256sum",
        "venv": "/opt/ferry/venv/bin/pip freeze --all",
        "users": "id ferry; id www-data",
        "services": "systemctl show -p MainPID -p ActiveEnterTimestamp -p NRestarts "
        "ferry-web ferry-worker nginx postgresql@15-main",
        "nginx workers": "main=$(systemctl show -p MainPID --value nginx); "
        'grep -ls "^PPid:[[:space:]]*$main\\$" /proc/[0-9]*/status | sort',
        "static": "find $(grep ^STATIC_ROOT= /etc/ferry/ferry.env | cut -d= -f2) "
        "-printf '%p %s %T@ %m\\n' | sort | sha256sum",
    }
    return {name: host.sh(script) for name, script in checks.items()}


def test_second_run_changes_nothing(deployed_host: Host) -> None:
    host = deployed_host
    before = state_of(host)
    started = time.monotonic()
    output = host.provision()
    progress(f"second provisioning run: {time.monotonic() - started:.0f} s")
    after = state_of(host)
    changed = [
        "\n".join(difflib.unified_diff(before[name].splitlines(), after[name].splitlines(), name))
        for name in before
        if before[name] != after[name]
    ]
    assert not changed, "\n".join(changed) + "\n" + output[-4000:]
    assert "ferry-web and ferry-worker left running" in output
    assert "nginx left running" in output
    assert "keeping existing /etc/ferry/ferry.env" in output
    assert "Ferry is up" in output


def web_workers(host: Host) -> str:
    return host.sh(
        "main=$(systemctl show -p MainPID --value ferry-web); "
        'grep -ls "^PPid:[[:space:]]*$main\\$" /proc/[0-9]*/status | sort'
    )


class HealthWatcher(threading.Thread):
    """Asks /healthz through nginx over and over; notes every answer that is not 200."""

    def __init__(self, host: Host) -> None:
        super().__init__(daemon=True)
        self.host, self.asked, self.stop = host, 0, False
        self.failures: list[str] = []

    def run(self) -> None:
        session = requests.Session()
        session.verify, session.trust_env = self.host.certificate, False
        while not self.stop:
            self.asked += 1
            try:
                status = session.get(f"{self.host.base}/healthz", timeout=30).status_code
                if status != 200:
                    self.failures.append(str(status))
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            time.sleep(0.1)


def test_new_code_reloads_the_web_server_without_downtime(deployed_host: Host) -> None:
    """An upgrade that changes only code: ferry-web reloads (same master, new workers) while
    requests keep being answered; the worker restarts."""
    host = deployed_host
    main_before = host.sh("systemctl show -p MainPID --value ferry-web")
    workers_before = web_workers(host)
    (host.var_dir.parent / "src" / "deploy" / "UPGRADED").write_text("a new release\n")
    watcher = HealthWatcher(host)
    watcher.start()
    try:
        output = host.provision()
    finally:
        watcher.stop = True
        watcher.join(60)
    assert "reloaded ferry-web gracefully (new code), restarted ferry-worker" in output
    assert host.sh("cat /opt/ferry/app/deploy/UPGRADED") == "a new release\n"
    assert host.sh("systemctl show -p MainPID --value ferry-web") == main_before
    deadline = time.monotonic() + 60
    while web_workers(host) == workers_before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert web_workers(host) != workers_before, "gunicorn kept its old workers"
    assert watcher.asked > 10
    assert not watcher.failures, watcher.failures
