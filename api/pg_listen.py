"""What a LISTEN connection of its own needs to reach the database Django uses: the event
stream's wake-ups (api.event_stream) and the task broker's (operations.broker) each keep one,
outside Django's connections (a LISTEN must outlive requests and transactions)."""

from __future__ import annotations

from typing import Any

from django.db import connections


def listen_conninfo(alias: str = "default") -> dict[str, Any]:
    """psycopg.connect() keywords for the database ``alias`` (unset parts left out)."""
    params = connections[alias].settings_dict
    conninfo = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
    return {key: value for key, value in conninfo.items() if value is not None}
