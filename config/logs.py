"""Structured logs: every line one JSON object (structlog's renderer over the standard logging
that Django, django-q2 and Ferry's modules use). What is bound with
``structlog.contextvars.bind_contextvars`` while a line is logged (a job's id while a worker
runs a task of that job, or while a request about a job is served) is in it as its own key.

LOGGING (config/settings/base.py) names :func:`json_formatter`; FERRY_LOG_FORMAT=plain gives
the old one-line text instead.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _with_context(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        for key, value in structlog.contextvars.get_contextvars().items():
            if key not in _RESERVED and not hasattr(record, key):
                setattr(record, key, value)
        return record

    make.ferry_context = True  # type: ignore[attr-defined]
    return make


def install_context_on_records() -> None:
    """Copy the bound context onto each log record when it is made (so every handler, and a
    formatter that runs later or in another thread, sees the job id of the moment)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "ferry_context", False):
        logging.setLogRecordFactory(_with_context(factory))


def json_formatter() -> logging.Formatter:
    install_context_on_records()
    configure_structlog()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def configure_structlog() -> None:
    """structlog's own loggers hand their events to standard logging (same handlers, JSON)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
