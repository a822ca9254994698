"""Executors by alias, from ``settings.EXECUTORS`` (loaded like Django's ``STORAGES``).

    EXECUTORS = {"local-docker": {"BACKEND": "executors.docker.DockerExecutor", "OPTIONS": {...}}}
    EXECUTOR_ROUTING = {"docker": "local-docker"}   # operation mode -> alias

Each alias is instantiated once per process; changing either setting (``override_settings``, the
pytest ``settings`` fixture) drops the instances.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import Executor, ExecutorError

_instances: dict[str, Executor] = {}
_lock = threading.Lock()
# alias prefix -> function(alias) -> Executor, for executors registered at run time (e.g.
# Cromwell servers an admin adds: "cromwell:<name>"); the resolver does its own caching.
_resolvers: dict[str, Callable[[str], Executor]] = {}


def register_resolver(prefix: str, resolver: Callable[[str], Executor]) -> None:
    _resolvers[prefix] = resolver


class ExecutorNotConfigured(ExecutorError):
    """No executor of that alias (or for that mode) is configured on this server."""


def executor_class(path: Any) -> type[Executor]:
    """The class a BACKEND dotted path names; ImproperlyConfigured if it isn't an Executor."""
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured(f"An executor BACKEND must be a dotted path, not {path!r}.")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"Executor backend {path!r} can't be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise ImproperlyConfigured(
            f"Executor backend {path!r} is not a subclass of executors.base.Executor."
        )
    return cls


def get_executor(alias: str) -> Executor:
    for prefix, resolver in _resolvers.items():
        if alias.startswith(prefix) and alias not in settings.EXECUTORS:
            return resolver(alias)
    with _lock:
        executor = _instances.get(alias)
        if executor is not None:
            return executor
        config: dict[str, Any] | None = settings.EXECUTORS.get(alias)
        if config is None:
            raise ExecutorNotConfigured(
                f"No executor named {alias!r} is configured on this server."
            )
        cls = executor_class(config.get("BACKEND"))
        executor = cls(alias, dict(config.get("OPTIONS") or {}))
        _instances[alias] = executor
        return executor


def alias_for_mode(mode: str) -> str:
    """The alias of the executor that runs ``mode`` operations (``settings.EXECUTOR_ROUTING``):
    the one routing decision; ExecutorNotConfigured when none does."""
    alias = settings.EXECUTOR_ROUTING.get(mode)
    if not alias:
        raise ExecutorNotConfigured(f"No executor runs {mode} operations on this server.")
    return str(alias)


def executor_for_mode(mode: str) -> Executor:
    return get_executor(alias_for_mode(mode))


def reset_executors() -> None:
    with _lock:
        dropped = list(_instances.values())
        _instances.clear()
    for executor in dropped:
        executor.stop_waiting()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("EXECUTORS", "EXECUTOR_ROUTING"):
        reset_executors()
