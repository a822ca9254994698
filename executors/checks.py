"""A system check for ``settings.EXECUTORS`` and ``settings.EXECUTOR_ROUTING``.

Register it where the app starts (``operations/apps.py``)::

    from django.core import checks
    from executors.checks import check_executors
    checks.register(check_executors)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .registry import executor_class

HINT = "Each entry is alias: {'BACKEND': 'dotted.path.ToExecutor', 'OPTIONS': {...}}."


def _entry_errors(alias: object, config: Any) -> list[checks.CheckMessage]:
    """One EXECUTORS entry: its shape (E001), its backend (E002, E003) and the options the
    backend rejects (E005)."""
    where = f"settings.EXECUTORS[{alias!r}]"
    if not isinstance(config, dict) or "BACKEND" not in config:
        return [checks.Error(f"{where} has no BACKEND.", hint=HINT, id="ferry.E001")]
    options = config.get("OPTIONS", {})
    if not isinstance(options, dict):
        return [checks.Error(f"{where}['OPTIONS'] must be a dict.", id="ferry.E001")]
    try:
        cls = executor_class(config["BACKEND"])
    except ImproperlyConfigured as exc:
        error_id = "ferry.E003" if "subclass" in str(exc) else "ferry.E002"
        return [checks.Error(f"{where}: {exc}", id=error_id)]
    check_options = getattr(cls, "check_options", None)
    if not callable(check_options):
        return []
    return [
        checks.Error(f"{where}: {problem}.", id="ferry.E005") for problem in check_options(options)
    ]


def _routing_errors(executors: dict[Any, Any]) -> list[checks.CheckMessage]:
    """EXECUTOR_ROUTING: a dict whose aliases are EXECUTORS entries or Cromwell servers (E004)."""
    routing = getattr(settings, "EXECUTOR_ROUTING", None)
    if not isinstance(routing, dict):
        return [
            checks.Error(
                "settings.EXECUTOR_ROUTING must be a dict of operation mode -> executor alias.",
                id="ferry.E004",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for mode, alias in routing.items():
        if isinstance(alias, str) and alias.startswith("cromwell:"):
            continue  # a registered Cromwell server: checked when jobs are routed to it
        if alias not in executors:
            errors.append(
                checks.Error(
                    f"settings.EXECUTOR_ROUTING sends {mode} operations to {alias!r}, "
                    "which is not in settings.EXECUTORS.",
                    id="ferry.E004",
                )
            )
    return errors


def check_executors(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """ferry.E001 malformed entry, E002 backend not importable, E003 not an Executor,
    E004 routing to an unknown alias, E005 options the backend rejects."""
    executors = getattr(settings, "EXECUTORS", None)
    if not isinstance(executors, dict):
        return [checks.Error("settings.EXECUTORS must be a dict.", hint=HINT, id="ferry.E001")]
    errors: list[checks.CheckMessage] = []
    for alias, config in executors.items():
        errors += _entry_errors(alias, config)
    return errors + _routing_errors(executors)
