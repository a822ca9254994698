"""How Ferry talks to PostgreSQL, as the settings module builds it from the environment:
parameters bound on the server (prepared statements) unless FERRY_DB_SERVER_BINDING=false,
for a pooler that can't keep prepared statements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READ = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
)


def _options(**env: str) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if k != "FERRY_DB_SERVER_BINDING"}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL="postgres://ferry:secret@db.example.org:5432/ferry",
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, True), ({"FERRY_DB_SERVER_BINDING": "false"}, False)],
)
def test_parameters_are_bound_on_the_server_unless_turned_off(
    env: dict[str, str], expected: bool
) -> None:
    assert _options(**env).get("server_side_binding") is expected
