"""Serve Ferry with its django-q2 worker beside it; Ctrl-C stops both (used by `make run`)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this command is killed without a chance to clean up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Command(BaseCommand):
    help = "Start the web server and the django-q2 worker together; stop both on Ctrl-C or SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port to listen on")
        parser.add_argument("--no-worker", action="store_true", help="Do not start the worker.")

    def handle(self, *args: Any, **opts: Any) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # glibc reads MALLOC_ARENA_MAX at start (config.malloc also sets it later, see there).
        env = {"MALLOC_ARENA_MAX": "2", **os.environ, "PYTHONUNBUFFERED": "1"}
        host, _, port = opts["bind"].rpartition(":")
        # uvicorn serves the ASGI app: every endpoint, and the event stream (GET /api/events/),
        # which Django's runserver (WSGI) can't stream.
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "config.asgi:application",
                    "--host",
                    host or "127.0.0.1",
                    "--port",
                    port,
                    "--lifespan",
                    "off",
                    "--timeout-graceful-shutdown",
                    "5",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                preexec_fn=_die_with_parent,
            )
        ]
        if not opts["no_worker"]:
            children.append(
                subprocess.Popen([*manage, "qcluster"], env=env, preexec_fn=_die_with_parent)
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Ferry is at http://{opts['bind']}/api/ (docs: /api/docs/, admin: /admin/). Ctrl-C stops it."
            )
        )

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if not stopping:
            self.stderr.write(
                "A Ferry process exited on its own; see its messages above. Both are stopped."
            )
            sys.exit(1)
