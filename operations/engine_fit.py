"""Which executors may run a WDL operation's jobs, besides the mode's routing.

Two cases narrow it:

* **Cromwell only** (``Operation.executors == ["cromwell:*"]``): miniwdl refuses the workflow
  and a registered Cromwell server accepted it when it was added. Its jobs go to the Cromwell
  server asked for, or else (the routing names no Cromwell) to an active registered one, those
  that accepted it first. Asking for another executor is a 400 saying why; no Cromwell server
  taking new jobs is a 409 saying what to do.
* **Never Cromwell**: a draft-2 document of a single task and no workflow. Cromwell runs a
  lone task only from WDL 1.0 on (its draft-2 language factory needs a workflow: "Cannot
  execute this WDL: no primary workflow provided"); miniwdl runs it.
"""

from __future__ import annotations

from django.conf import settings

from api.exceptions import ApplicationError, field_error

from .models import CROMWELL_ALIAS_PREFIX, CROMWELL_ANY, CromwellServer, Operation, ServerState


def is_cromwell(alias: str) -> bool:
    """A registered Cromwell server's alias, or a configured executor of Cromwell's class."""
    config = settings.EXECUTORS.get(alias)
    if config is None:
        return alias.startswith(CROMWELL_ALIAS_PREFIX)
    from executors.cromwell import CromwellExecutor
    from executors.registry import executor_class

    return issubclass(executor_class(config.get("BACKEND")), CromwellExecutor)


def cromwell_only(operation: Operation) -> bool:
    return CROMWELL_ANY in (operation.executors or [])


def _accepting_servers(operation: Operation) -> list[str]:
    """Aliases of the active registered Cromwell servers, those that accepted it first."""
    accepted = list((operation.spec.get("wdl") or {}).get("accepted_by") or [])
    active = [
        server.executor_alias
        for server in CromwellServer.objects.filter(state=ServerState.ACTIVE).order_by("name")
    ]
    return [a for a in accepted if a in active] + [a for a in active if a not in accepted]


def _why(operation: Operation) -> str:
    refusal = (operation.spec.get("wdl") or {}).get("miniwdl_refuses") or ["no reason recorded"]
    return (
        f"{operation.name} runs only on a Cromwell server: miniwdl refuses its workflow "
        f"({refusal[0]}), which a Cromwell server accepted when it was added"
    )


def cromwell_only_alias(operation: Operation, requested: str | None, routed: str | None) -> str:
    """The executor of a new job of a Cromwell-only operation (see the module's docstring);
    ``routed`` is the mode's routing (None when there is none). Draining / unknown registered
    servers are checked by the caller."""
    if requested:
        if is_cromwell(requested):
            return requested
        choices = _accepting_servers(operation)
        offer = f"choose {', '.join(choices)}" if choices else "no Cromwell server takes jobs now"
        raise field_error(
            "executor",
            f"{_why(operation)}; {requested} can't run it ({offer}).",
            code="executor_not_allowed",
        )
    if routed and is_cromwell(routed) and routed in settings.EXECUTORS:
        return routed
    servers = _accepting_servers(operation)
    if routed and routed in servers:
        return routed
    if not servers:
        raise ApplicationError(
            f"{_why(operation)}; no registered Cromwell server takes new jobs. An admin "
            "registers one, or sets a draining one active, then the job can be submitted.",
            code="no_cromwell_server",
            status_code=409,
            details={"executor": ["No active Cromwell server."]},
        )
    return servers[0]


def refuse_lone_draft2_task(operation: Operation, alias: str) -> None:
    """A 400 when a draft-2 document of one task would go to Cromwell (see the docstring)."""
    about = operation.spec.get("wdl") or {}
    if about.get("task") and about.get("wdl_version") == "draft-2" and is_cromwell(alias):
        raise field_error(
            "executor",
            f"{operation.name} is a draft-2 document of a single task without a workflow: "
            f"Cromwell ({alias}) runs a task by itself only from WDL 1.0 on. Run it on "
            "miniwdl, or add a workflow that calls the task (or declare version 1.0).",
            code="executor_not_allowed",
        )
