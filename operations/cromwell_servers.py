"""Registered Cromwell servers: add, update, drain, remove, check health; and the executors
that run jobs on them (alias ``cromwell:<name>``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from api.crypto import decrypt_secret
from api.exceptions import ApplicationError, Conflict, field_error
from api.models import Credential, CredentialKind
from executors.base import Executor, ExecutorError
from executors.registry import ExecutorNotConfigured

from .models import CROMWELL_ALIAS_PREFIX, CromwellServer, Job, ServerState

if TYPE_CHECKING:
    from executors.cromwell import CromwellExecutor

_OPTION_KEYS = {
    "inputs_location",
    "outputs_location",
    "workflow_options",
    "query_page_size",
    "timeouts",
    "post_submit_grace_s",
    "fail_unknown_after_s",
    "retries",
    "backoff_s",
    "local_roots",
}


def _check_options(options: dict[str, Any], url: str) -> dict[str, Any]:
    from executors.cromwell import check_options

    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise field_error(
            "options",
            f"Unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(_OPTION_KEYS))}.",
        )
    for key in ("inputs_location", "outputs_location"):
        if key in options:
            from api.storage import buckets

            try:
                buckets.parse_uri(str(options[key]))
            except buckets.InvalidObjectURI as exc:
                raise field_error(f"options.{key}", exc.message) from None
    problems = check_options({**options, "url": url})
    if problems:
        raise ApplicationError(
            problems[0],
            details={"options": [p.replace("OPTIONS", "options") for p in problems]},
        )
    return options


def _check_credential(credential: Credential | None) -> None:
    if credential is not None and credential.kind != CredentialKind.CROMWELL:
        raise field_error("credential", "Choose a credential of kind cromwell.")


def _auth_from_secret(secret: dict[str, Any]) -> dict[str, Any] | None:
    if secret.get("token"):
        return {"type": "bearer", "token": secret["token"]}
    if secret.get("username"):
        return {
            "type": "basic",
            "username": secret["username"],
            "password": secret.get("password", ""),
        }
    return None


def check_cromwell_credential(config: dict[str, Any], secret: dict[str, Any]) -> list[str]:
    """Problems reaching the Cromwell at ``config["url"]`` with this login ([] when fine)."""
    from executors.cromwell import CromwellExecutor

    url = str(config.get("url") or "").rstrip("/")
    try:
        executor = CromwellExecutor(
            "credential-check",
            {"url": url, "auth": _auth_from_secret(secret), "retries": 0, "backoff_s": 0},
        )
    except ExecutorError as exc:
        return [str(exc)]
    health = executor.health()
    if not health.get("reachable"):
        return [f"Cromwell at {url} can't be reached: {health.get('error') or 'no answer'}"]
    if not health.get("ok"):
        return [f"Cromwell at {url} answers but is not healthy: {health.get('message')}"]
    return []


def executor_options(server: CromwellServer) -> dict[str, Any]:
    """The CromwellExecutor options for a server, its login decrypted."""
    options: dict[str, Any] = {**server.options, "url": server.url, "auth": None}
    if server.credential is not None and server.credential.secret_ciphertext:
        options["auth"] = _auth_from_secret(decrypt_secret(server.credential.secret_ciphertext))
    return options


def _build(server: CromwellServer) -> CromwellExecutor:
    from executors.cromwell import CromwellExecutor

    return CromwellExecutor(server.executor_alias, executor_options(server))


_cache: dict[str, tuple[Any, Executor]] = {}
_cache_lock = threading.Lock()


def resolve_executor(alias: str) -> Executor:
    """The executor for ``cromwell:<name>`` (rebuilt when the server's record changes)."""
    name = alias.removeprefix(CROMWELL_ALIAS_PREFIX)
    server = CromwellServer.objects.select_related("credential").filter(name=name).first()
    if server is None:
        raise ExecutorNotConfigured(f"No Cromwell server named {name!r} is registered.")
    stamp = (server.updated_at, server.credential.updated_at if server.credential else None)
    with _cache_lock:
        cached = _cache.get(alias)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        executor = _build(server)
        _cache[alias] = (stamp, executor)
        return executor


def server_check(server: CromwellServer) -> CromwellServer:
    """Ask the server for its status and version, and record the outcome."""
    try:
        health = _build(server).health()
        ok = bool(health.get("ok", True))
        version = str(health.get("version") or "")
        message = str(health.get("message") or ("healthy" if ok else "unhealthy"))
    except ExecutorError as exc:
        ok, version, message = False, "", str(exc)
    CromwellServer.objects.filter(pk=server.pk).update(
        checked_at=timezone.now(), healthy=ok, version=version[:100], health_message=message
    )
    server.refresh_from_db()
    return server


def server_create(
    *,
    name: str,
    url: str,
    credential: Credential | None = None,
    options: dict[str, Any] | None = None,
) -> CromwellServer:
    _check_credential(credential)
    if CromwellServer.objects.filter(name=name).exists():
        raise Conflict(
            f"A Cromwell server named {name} exists already.",
            code="duplicate",
            details={"name": ["Already used."]},
        )
    server = CromwellServer.objects.create(
        name=name,
        url=url.rstrip("/"),
        credential=credential,
        options=_check_options(dict(options or {}), url),
    )
    return server_check(server)


def server_update(*, server: CromwellServer, **fields: Any) -> CromwellServer:
    if "name" in fields and fields["name"] != server.name:
        if active_jobs(server):
            raise Conflict(
                "The server has active jobs, which refer to it by name; rename it when they "
                "are done.",
                code="server_busy",
            )
        if CromwellServer.objects.filter(name=fields["name"]).exclude(pk=server.pk).exists():
            raise Conflict(
                f"A Cromwell server named {fields['name']} exists already.",
                code="duplicate",
                details={"name": ["Already used."]},
            )
    if "credential" in fields:
        _check_credential(fields["credential"])
    if "options" in fields or "url" in fields:
        fields["options"] = _check_options(
            dict(fields.get("options", server.options) or {}), fields.get("url", server.url)
        )
    if "url" in fields:
        fields["url"] = str(fields["url"]).rstrip("/")
    for key, value in fields.items():
        setattr(server, key, value)
    server.save()
    if {"url", "credential"} & set(fields):
        return server_check(server)
    return server


def active_jobs(server: CromwellServer) -> int:
    return Job.objects.filter(executor=server.executor_alias).active().count()


def server_delete(*, server: CromwellServer) -> None:
    with transaction.atomic():
        locked = CromwellServer.objects.select_for_update().get(pk=server.pk)
        count = active_jobs(locked)
        if count:
            raise Conflict(
                f"The server has {count} active job(s); drain it (state=draining) and remove it "
                "when they are done.",
                code="server_busy",
            )
        locked.delete()


def require_accepting(alias: str) -> None:
    """New jobs may go to a registered server only while it is active (not draining)."""
    name = alias.removeprefix(CROMWELL_ALIAS_PREFIX)
    server = CromwellServer.objects.filter(name=name).first()
    if server is None:
        raise field_error("executor", f"No Cromwell server named {name!r} is registered.")
    if server.state != ServerState.ACTIVE:
        raise ApplicationError(
            f"The Cromwell server {name} is draining and takes no new jobs; choose another "
            "executor.",
            code="executor_draining",
            status_code=409,
            details={"executor": ["Draining."]},
        )


def check_all_servers() -> int:
    """Refresh every registered server's health (a django-q2 schedule runs this every few
    minutes, so the admin list shows current health). Returns how many were checked."""
    count = 0
    for server in CromwellServer.objects.select_related("credential"):
        server_check(server)
        count += 1
    return count


def credential_use(credential: Credential) -> str:
    """Why ``credential`` can't be deleted: the Cromwell servers that log in with it."""
    servers = CromwellServer.objects.filter(credential=credential).count()
    return f"{servers} Cromwell server(s) log in with it" if servers else ""
