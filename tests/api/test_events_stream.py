"""GET /api/events/ through the real ASGI app (uvicorn, in a thread of this process) on the test
PostgreSQL: job status changes reach a member's stream, a reconnect with Last-Event-ID gets
exactly what it missed, strangers see nothing, stream tokens work and expire, heartbeats flow,
and the polling path (SQLite's, here with NOTIFY off) delivers too. Plus what records events:
memberships, only when something changed."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from api import event_stream, services
from api.events import record_event
from api.models import Event, Membership, Role, StreamWatch, User, Workspace
from operations.models import Job, Operation
from operations.states import JobStatus
from operations.transitions import transition
from tests.api.sse import SseClient, asgi_server
from tests.conftest import make_user
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(settings: Any) -> Iterator[str]:
    settings.FERRY_EVENTS_HEARTBEAT_SECONDS = 0.5
    settings.FERRY_EVENTS_MAX_SECONDS = 60
    with asgi_server() as base:
        yield base


@pytest.fixture
def streams() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for stream in opened:
        stream.close()


def session_cookie(user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {
        django_settings.SESSION_COOKIE_NAME: client.cookies[
            django_settings.SESSION_COOKIE_NAME
        ].value
    }


def open_stream(
    streams: list[SseClient], base: str, user: User | None, query: str = "", **headers: str
) -> SseClient:
    stream = SseClient(
        f"{base}/api/events/{query}",
        headers=headers,
        cookies=session_cookie(user) if user is not None else {},
    )
    streams.append(stream)
    return stream


def make_job(workspace: Workspace, owner: User) -> Job:
    return Job.objects.create(
        operation=Operation.objects.filter(name="echo").first() or make_echo_operation(),
        workspace=workspace,
        owner=owner,
        inputs={"text": "hello"},
        executor="local-docker",
        status=JobStatus.QUEUED,
    )


def next_of(stream: SseClient, kind: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = stream.next(timeout=max(0.1, deadline - time.monotonic()))
        if event["kind"] == kind:
            return event


def test_a_member_hears_a_job_status_change(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"])
    stream = open_stream(streams, server, users["viewer"], f"?workspace={workspace.pk}")
    assert stream.wait_connected() == 200
    began = time.monotonic()
    assert transition(job, JobStatus.SUBMITTED)
    event = next_of(stream, "job.status", timeout=10)
    assert time.monotonic() - began < 10
    assert event["job"] == str(job.pk)
    assert event["payload"]["to"] == "submitted"
    assert event["workspace"] == str(workspace.pk)


def test_resuming_with_last_event_id_gets_exactly_the_missed_events(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"])
    first = open_stream(streams, server, users["owner"], f"?job={job.pk}")
    assert first.wait_connected() == 200
    assert transition(job, JobStatus.SUBMITTED)
    seen = first.next()
    first.close()
    # Missed while away: two moves of this job (and another job's, not asked for).
    assert transition(job, JobStatus.RUNNING)
    other = make_job(workspace, users["owner"])
    assert transition(other, JobStatus.SUBMITTED)
    assert transition(job, JobStatus.FINALIZING)
    missed = list(
        Event.objects.filter(job=job, id__gt=seen["id"]).order_by("id").values_list("id", flat=True)
    )
    assert len(missed) == 2
    again = open_stream(
        streams, server, users["owner"], f"?job={job.pk}", **{"Last-Event-ID": str(seen["id"])}
    )
    assert again.wait_connected() == 200
    assert [again.next()["id"] for _ in missed] == missed
    assert again.none_within(1.5), "an event was sent twice or one of another job"


def test_a_stranger_sees_nothing_of_another_workspace(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    stranger = users["other"]
    own = services.workspace_create(user=stranger, name="theirs")
    hidden = open_stream(streams, server, stranger, f"?workspace={workspace.pk}")
    assert hidden.wait_connected() == 404
    nowhere = open_stream(streams, server, users["staff"], f"?workspace={uuid.uuid4()}")
    assert nowhere.wait_connected() == 404
    stream = open_stream(streams, server, stranger)
    assert stream.wait_connected() == 200
    assert transition(make_job(workspace, users["owner"]), JobStatus.SUBMITTED)
    make_user("viewer2@example.org")
    services.member_add(workspace=workspace, email="viewer2@example.org", role=Role.VIEWER)
    mine = make_job(own, stranger)
    assert transition(mine, JobStatus.SUBMITTED)
    received = next_of(stream, "job.status")
    assert received["job"] == str(mine.pk), f"a stranger got {received}"
    assert stream.none_within(1.0)


def test_a_stream_token_opens_the_stream_for_a_minute_and_nothing_else(
    server: str,
    streams: list[SseClient],
    users: dict[str, User],
    workspace: Workspace,
    settings: Any,
) -> None:
    api = APIClient()
    api.force_authenticate(users["editor"])
    minted = api.post("/api/events/token/")
    assert minted.status_code == 201
    assert minted.json()["expires_in"] == 60
    token = minted.json()["token"]
    stream = open_stream(streams, server, None, f"?token={token}")
    assert stream.wait_connected() == 200
    job = make_job(workspace, users["owner"])
    assert transition(job, JobStatus.SUBMITTED)
    assert next_of(stream, "job.status")["job"] == str(job.pk)

    # Not a token: the long-lived API token, a tampered token.
    api_token, _ = services.api_token_create(user=users["editor"], name="long-lived")
    for bad in (str(api_token), token[:-2] + "xx"):
        refused = open_stream(streams, server, None, f"?token={bad}")
        assert refused.wait_connected() == 401
    # Expired.
    settings.FERRY_EVENTS_TOKEN_SECONDS = 1
    time.sleep(2.1)
    expired = open_stream(streams, server, None, f"?token={token}")
    assert expired.wait_connected() == 401
    # Nobody: no cookie, no token.
    anonymous = open_stream(streams, server, None)
    assert anonymous.wait_connected() == 401


def test_bad_parameters_get_a_clear_400(
    server: str, streams: list[SseClient], users: dict[str, User]
) -> None:
    for query, headers in (
        ("?workspace=nope", {}),
        ("?job=12", {}),
        ("", {"Last-Event-ID": "abc"}),
        ("", {"Last-Event-ID": "9" * 30}),
        ("?last_event_id=-1", {}),
    ):
        stream = open_stream(streams, server, users["owner"], query, **headers)
        assert stream.wait_connected() == 400, query or headers


def test_heartbeats_arrive(server: str, streams: list[SseClient], users: dict[str, User]) -> None:
    stream = open_stream(streams, server, users["owner"])
    assert stream.wait_connected() == 200
    deadline = time.monotonic() + 20
    while stream.comments.count("heartbeat") < 2:
        assert time.monotonic() < deadline, f"heartbeats: {stream.comments}"
        time.sleep(0.1)


def test_polling_delivers_when_notify_is_off(
    settings: Any, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    """SQLite's path: no LISTEN, the hub reads every FERRY_EVENTS_POLL_SECONDS."""
    settings.FERRY_EVENTS_NOTIFY = False
    settings.FERRY_EVENTS_POLL_SECONDS = 0.2
    settings.FERRY_EVENTS_HEARTBEAT_SECONDS = 5
    with asgi_server() as base:
        stream = open_stream(streams, base, users["owner"], f"?workspace={workspace.pk}")
        assert stream.wait_connected() == 200
        job = make_job(workspace, users["owner"])
        assert transition(job, JobStatus.SUBMITTED)
        assert next_of(stream, "job.status", timeout=10)["job"] == str(job.pk)
        stream.close()


def test_a_member_hears_membership_changes_and_a_removed_member_loses_the_workspace(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    viewer = users["viewer"]
    stream = open_stream(streams, server, viewer)
    assert stream.wait_connected() == 200
    membership = Membership.objects.get(workspace=workspace, user=viewer)
    services.member_remove(membership=membership)
    removed = next_of(stream, "membership.changed")
    assert removed["payload"] == {
        "workspace": str(workspace.pk),
        "user": str(viewer.pk),
        "role": None,
    }
    assert transition(make_job(workspace, users["owner"]), JobStatus.SUBMITTED)
    assert stream.none_within(1.5), "a removed member still hears the workspace"


def test_membership_events_only_when_something_changed(
    users: dict[str, User], workspace: Workspace
) -> None:
    membership = Membership.objects.get(workspace=workspace, user=users["editor"])
    before = Event.objects.filter(kind="membership.changed").count()
    services.member_update(membership=membership, role=Role.EDITOR)  # the role it has
    assert Event.objects.filter(kind="membership.changed").count() == before
    services.member_update(membership=membership, role=Role.VIEWER)
    last = Event.objects.filter(kind="membership.changed").last()
    assert last is not None
    assert last.payload["role"] == "viewer"
    assert Event.objects.filter(kind="membership.changed").count() == before + 1


def test_a_job_event_is_not_written_when_its_transaction_rolls_back(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"])
    before = Event.objects.count()

    def fail() -> None:
        raise RuntimeError("publishing failed")

    with pytest.raises(RuntimeError):
        transition(job, JobStatus.SUBMITTED, along=fail)
    assert Event.objects.count() == before
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_event_writers_commit_in_id_order(users: dict[str, User], workspace: Workspace) -> None:
    """While one transaction holds an uncommitted event, another can't write one (it would get
    a higher id and could commit first: a reader at that id would skip the first for good)."""
    from django.db import OperationalError, connection, transaction

    from api.events import record_event

    holding = threading.Event()
    release = threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = record_event(
                    kind="test.first", payload={}, workspace_id=workspace.pk
                ).pk
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    def second_within_300_ms() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            record_event(kind="test.second", payload={}, workspace_id=workspace.pk)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert holding.wait(30)
        with pytest.raises(OperationalError, match="lock timeout"):
            second_within_300_ms()
    finally:
        release.set()
        thread.join(30)
    second = record_event(kind="test.second", payload={}, workspace_id=workspace.pk)
    assert second.pk > outcome["first"]


def test_a_finished_job_event_carries_its_outputs(
    users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"])
    for step in (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FINALIZING):
        assert transition(job, step)
    assert transition(job, JobStatus.SUCCEEDED, outputs={"said": "f-1"})
    last = Event.objects.filter(job=job).last()
    assert last is not None
    assert last.payload["to"] == "succeeded"
    assert last.payload["outputs"] == {"said": "f-1"}


def test_a_notice_carries_its_event_as_the_table_gives_it(
    users: dict[str, User], workspace: Workspace
) -> None:
    """The hub sends the event a NOTIFY carries as it is: it must be what a read of the table
    gives (what a catch-up sends). An event too long for a notice comes as its id alone."""
    import psycopg

    from api.events import NOTIFY_CHANNEL, event_fields, event_of_notice
    from api.pg_listen import listen_conninfo

    job = make_job(workspace, users["owner"])
    with psycopg.Connection.connect(autocommit=True, **listen_conninfo()) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        small = record_event(
            kind="test.small",
            payload={"to": "é ✓", "n": [1, 2.5, None], "nested": {"b": 1, "a": True}},
            workspace_id=workspace.pk,
            job_id=job.pk,
        )
        big = record_event(
            kind="test.big", payload={"text": "x" * 10_000}, workspace_id=workspace.pk
        )
        notices = [n.payload for n in listener.notifies(timeout=10, stop_after=2)]
    assert [event_of_notice(text)[0] for text in notices] == [small.pk, big.pk]
    assert event_of_notice(notices[0])[1] == event_fields(Event.objects.get(pk=small.pk))
    assert event_of_notice(notices[1])[1] is None
    assert event_of_notice("not ours") == (None, None)


@pytest.mark.django_db(transaction=False)
def test_the_hub_sends_the_next_event_from_its_notice_and_reads_the_table_otherwise() -> None:
    import asyncio
    import json

    hub = event_stream.Hub()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    hub.streams.add(queue)
    hub.cursor = 41

    def notice(event_id: int, body: bool = True) -> str:
        fields: dict[str, Any] = {
            "kind": "k",
            "workspace": None,
            "job": None,
            "file": None,
            "payload": {},
        }
        return f"{event_id} {json.dumps(fields)}" if body else str(event_id)

    hub._noticed(notice(42))  # the next one, carried whole: sent as it is
    assert (queue.get_nowait()["id"], hub.cursor, hub.wake.is_set()) == (42, 42, False)
    hub._noticed(notice(42))  # (already sent)
    hub._noticed(notice(40))
    assert (queue.empty(), hub.wake.is_set()) == (True, False)
    hub._noticed(notice(43, body=False))  # too long for a notice: read from the table
    assert (queue.empty(), hub.wake.is_set(), hub.cursor) == (True, True, 42)
    hub.wake.clear()
    hub._noticed(notice(45))  # after a gap (44 rolled back, or its notice lost)
    assert (queue.empty(), hub.wake.is_set(), hub.cursor) == (True, True, 42)


def test_a_stream_gets_what_a_notice_cannot_carry_and_what_comes_after_a_gap(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    from django.db import transaction

    stream = open_stream(streams, server, users["owner"], f"?workspace={workspace.pk}")
    assert stream.wait_connected() == 200
    big = record_event(kind="test.big", payload={"text": "x" * 10_000}, workspace_id=workspace.pk)

    # A writer that rolls back has drawn an id: the next notice comes after a gap.
    def lost() -> None:
        with transaction.atomic():
            record_event(kind="test.lost", payload={}, workspace_id=workspace.pk)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        lost()
    after = record_event(kind="test.after", payload={"n": 1}, workspace_id=workspace.pk)
    then = record_event(kind="test.then", payload={"n": 2}, workspace_id=workspace.pk)
    got = [stream.next(timeout=10) for _ in range(3)]
    assert [(e["id"], e["kind"]) for e in got] == [
        (big.pk, "test.big"),
        (after.pk, "test.after"),
        (then.pk, "test.then"),
    ]
    assert got[0]["payload"] == {"text": "x" * 10_000}
    assert stream.none_within(1.0), "an event was sent twice"


@pytest.mark.django_db
def test_a_wsgi_server_says_the_stream_needs_asgi_instead_of_hanging(
    users: dict[str, User], workspace: Workspace
) -> None:
    """Under WSGI Django would gather the hour-long stream before sending a byte: a browser's
    EventSource would wait forever instead of falling back to polling."""
    client = Client()
    client.force_login(users["owner"])
    answer = client.get(f"/api/events/?workspace={workspace.pk}")
    assert answer.status_code == 503
    assert answer.json()["code"] == "stream_needs_asgi"


def test_metrics_count_the_open_streams(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    stream = open_stream(streams, server, users["viewer"], f"?workspace={workspace.pk}")
    assert stream.wait_connected() == 200
    scraped = requests.get(f"{server}/metrics", timeout=30)
    assert scraped.status_code == 200
    counts = [
        float(line.split()[-1])
        for line in scraped.text.splitlines()
        if line.startswith("ferry_stream_clients ")
    ]
    assert counts, scraped.text[:500]
    assert counts[0] >= 1


# ------------------------------------------------------------- slow clients, what streams watch


def raw_stream(base: str, user: User, query: str) -> socket.socket:
    """An open ``GET /api/events/`` on a socket that nobody reads (a tiny receive buffer)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    cookie = "; ".join(f"{k}={v}" for k, v in session_cookie(user).items())
    sock.sendall(
        f"GET /api/events/{query} HTTP/1.0\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode()
    )
    return sock


def read_to_the_end(sock: socket.socket, timeout: float = 60) -> str:
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def frames_of(body: str) -> tuple[list[int], list[str]]:
    """(event ids, comment lines) of an SSE body, in order."""
    ids, comments = [], []
    for frame in body.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("id: "):
                ids.append(int(line.removeprefix("id: ")))
            elif line.startswith(":"):
                comments.append(line[1:].strip())
    return ids, comments


def open_queues() -> set[tuple[Any, Any]]:
    """(hub, queue) of every stream open in this process (hubs of earlier tests' servers too)."""
    return {(h, q) for h in list(event_stream._hubs.values()) for q in list(h.streams)}


def test_a_client_that_does_not_read_is_ended_and_catches_up_without_loss_or_repeat(
    server: str,
    streams: list[SseClient],
    users: dict[str, User],
    workspace: Workspace,
    settings: Any,
) -> None:
    settings.FERRY_EVENTS_QUEUE_MAX = 5
    earlier = open_queues()
    sock = raw_stream(server, users["owner"], f"?workspace={workspace.pk}")
    try:
        # Subscribed once it says so (then the client stops reading): what is written next is
        # for this stream.
        sock.settimeout(30)
        start = b""
        while b": connected\n\n" not in start:
            chunk = sock.recv(1024)
            assert chunk, f"the stream did not open: {start[:300]!r}"
            start += chunk
        ((hub, queue),) = open_queues() - earlier
        # ~12 MB of events: more than the socket buffers hold, then more than the queue.
        written = [
            record_event(
                kind="job.notice", workspace_id=workspace.pk, payload={"pad": "x" * 32768}
            ).pk
            for _ in range(400)
        ]
        # Behind: the hub found its queue full (the stream then ends as soon as it can send).
        deadline = time.monotonic() + 30
        while not (hub.fell_behind(queue) or queue not in hub.streams):
            assert time.monotonic() < deadline, "the hub never found the queue full"
            time.sleep(0.05)
        body = start.decode() + read_to_the_end(sock)
    finally:
        sock.close()
    first_ids, comments = frames_of(body)
    assert comments[-1].startswith("behind"), comments[-3:]
    assert "retry: 500" in body.rsplit("\n\n", 3)[-2], "a retry hint before the end"
    assert first_ids == written[: len(first_ids)], "the first stream sent events in order"
    assert len(first_ids) < len(written), "the slow stream ended before it sent everything"
    again = open_stream(
        streams,
        server,
        users["owner"],
        f"?workspace={workspace.pk}",
        **{"Last-Event-ID": str(first_ids[-1])},
    )
    assert again.wait_connected() == 200
    rest = [again.next(timeout=30)["id"] for _ in written[len(first_ids) :]]
    assert first_ids + rest == written, "nothing lost, nothing repeated"
    assert again.none_within(1.0)


def test_an_open_stream_records_what_it_watches_until_it_closes(
    server: str, streams: list[SseClient], users: dict[str, User], workspace: Workspace
) -> None:
    job = make_job(workspace, users["owner"])
    stream = open_stream(streams, server, users["owner"], f"?job={job.pk}")
    assert stream.wait_connected() == 200
    deadline = time.monotonic() + 30
    while not StreamWatch.objects.filter(job_id=job.pk).exists():
        assert time.monotonic() < deadline, "the stream did not record its watch"
        time.sleep(0.05)
    on_workspace = open_stream(streams, server, users["viewer"], f"?workspace={workspace.pk}")
    assert on_workspace.wait_connected() == 200
    while not StreamWatch.objects.filter(workspace_id=workspace.pk).exists():
        assert time.monotonic() < deadline, "the stream did not record its watch"
        time.sleep(0.05)
    assert StreamWatch.objects.get(job_id=job.pk).expires_at > timezone.now()
    stream.close()
    on_workspace.close()
    while StreamWatch.objects.exists():
        assert time.monotonic() < deadline, "closed streams left their watches"
        time.sleep(0.05)
