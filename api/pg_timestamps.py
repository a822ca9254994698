"""PostgreSQL ``timestamptz`` values read by psycopg's C parser, as Django reads them.

Django registers its own loader for ``timestamptz`` (``psycopg_any.BaseTzLoader``): psycopg's
pure-Python parser, then the connection's time zone put on the value. That is ~6 µs a value,
and a 500-job page reads 600 of them (1,500 on a 500-file page). psycopg's C parser (in
``psycopg[binary]``) reads the same text into the same datetime in well under 1 µs, but it can't be
subclassed, and Django asks a connection's loader for its ``timezone`` (when it differs from
the connection's, Django registers its own on the cursor). ``FastTzLoader`` holds the C
parser, answers its value with Django's time zone put on it, as Django's loader does, and has
that ``timezone``; each new connection gets it (``use_c_timestamp_parser``). Where psycopg
runs without its C part, nothing changes.
"""

from __future__ import annotations

import functools
from datetime import datetime, tzinfo
from typing import Any

from psycopg import adapters, pq
from psycopg.abc import AdaptContext
from psycopg.adapt import Loader
from psycopg.types.datetime import TimestamptzLoader

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid
_PARSER: Any = adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)
# psycopg's C parser, if it has one (else its Python one, Django's already).
C_PARSER: Any = None if _PARSER is None or issubclass(_PARSER, TimestamptzLoader) else _PARSER


class FastTzLoader(Loader):
    """psycopg's C ``timestamptz`` parser with Django's time zone put on each value."""

    timezone: tzinfo | None = None

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._parse = C_PARSER(oid, context).load

    def load(self, data: Any) -> datetime:
        value: datetime = self._parse(data)
        return value.replace(tzinfo=self.timezone)


@functools.cache
def loader_for(tz: tzinfo | None) -> type[FastTzLoader]:
    """The loader class for Django's connection time zone ``tz`` (one per zone)."""
    return type("SpecificFastTzLoader", (FastTzLoader,), {"timezone": tz})


def use_c_timestamp_parser(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: a new PostgreSQL connection reads ``timestamptz``
    through ``FastTzLoader`` (a pooled one keeps it)."""
    if C_PARSER is None or connection.vendor != "postgresql":
        return
    raw = connection.connection
    loader = loader_for(connection.timezone)
    if raw.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT) is not loader:
        raw.adapters.register_loader(TIMESTAMPTZ_OID, loader)
