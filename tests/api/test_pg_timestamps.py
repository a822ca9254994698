"""``timestamptz`` values read through psycopg's C parser (``api.pg_timestamps``) are the
datetimes Django's own loader reads: the same values with the same time zone object, for
every shape PostgreSQL writes (microseconds or none, offsets of hours, minutes and seconds,
far years, the session's time zone other than UTC), and the same errors where Django's fails."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import pq

from api.models import User, Workspace
from api.pg_timestamps import C_PARSER, TIMESTAMPTZ_OID, FastTzLoader, loader_for

pytestmark = pytest.mark.django_db

TEXTS = [
    "2026-12-07 02:52:07.123456+00",
    "2026-12-07 02:52:07+00",
    "2026-12-07 02:52:07.5+05:30",
    "1999-12-31 23:59:59.999999-08",
    "1901-01-01 00:00:00+00:19:32",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2026-03-29 01:30:00+01",
]

# (read back by the server in other zones, the first and last years overflow Python's)
SERVER_TEXTS = [t for t in TEXTS if not t.startswith(("0001", "9999"))]


class DjangoLoader(BaseTzLoader):
    timezone = UTC


def _read(loader: Any, text: str) -> Any:
    try:
        value = loader.load(text.encode())
    except Exception as exc:  # (the same failure is what is compared)
        return type(exc)
    return (value, value.tzinfo)


def test_the_c_parser_is_in_use() -> None:
    assert C_PARSER is not None, pq.__impl__  # (psycopg[binary] is what Ferry pins)
    with connection.cursor() as cursor:
        raw: Any = cursor.connection
        assert issubclass(raw.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT), FastTzLoader)
    assert loader_for(connection.timezone) is loader_for(connection.timezone)


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_values_are_those_djangos_loader_reads(zone: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", ["TimeZone", zone])
        try:
            raw: Any = cursor.connection
            fast = loader_for(connection.timezone)(TIMESTAMPTZ_OID, raw)
            django = DjangoLoader(TIMESTAMPTZ_OID, raw)
            for text in [*TEXTS, "infinity", "-infinity", "2026-12-07 02:52:07+00 BC"]:
                assert _read(fast, text) == _read(django, text), text
            # And read from the server in this session's zone, through a query.
            cursor.execute("SELECT x::timestamptz FROM unnest(%s::text[]) AS x", [SERVER_TEXTS])
            got = [row[0] for row in cursor.fetchall()]
            assert [(v, v.tzinfo) for v in got] == [
                _read(django, str(v_text)) for v_text in _server_texts(cursor, SERVER_TEXTS)
            ]
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")


def _server_texts(cursor: Any, texts: list[str]) -> list[str]:
    cursor.execute("SELECT x::timestamptz::text FROM unnest(%s::text[]) AS x", [texts])
    return [row[0] for row in cursor.fetchall()]


def test_a_row_reads_back_the_time_it_was_saved_with(users: dict[str, User]) -> None:
    workspace = Workspace.objects.create(name="Times", created_by=users["owner"])
    read = Workspace.objects.get(pk=workspace.pk)
    assert (read.created_at, read.created_at.tzinfo) == (workspace.created_at, UTC)
