"""``python -m tests.cromwell_server --port N --work-dir DIR [--s3-endpoint URL ...]``."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import CromwellTestServer, create_app
from .config import config_from_argv


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT to leave ``serve_forever``."""


class _PlainLogHandler(WSGIRequestHandler):
    """Request lines without ANSI colours (the log is a file read by the tests)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s" %s %s', self.requestline, code, size)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    config = config_from_argv(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not config.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = CromwellTestServer(config)
    server.start()
    http = make_server(
        config.host,
        config.port,
        create_app(server),
        threaded=True,
        request_handler=_PlainLogHandler,
    )
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    mode = "simulated" if config.simulate else f"miniwdl, outputs {config.outputs}"
    logging.getLogger("cromwell_server").info(
        "Cromwell test server (%s) listening on http://%s:%d", mode, config.host, config.port
    )
    try:
        http.serve_forever()
    except _Stop as stop:
        logging.getLogger("cromwell_server").info("stopping (%s)", stop)
    finally:
        http.server_close()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
