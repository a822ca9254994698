"""What the registered Cromwell servers say about a WDL operation miniwdl accepted.

Cromwell and miniwdl disagree on a few documents (womtool refuses mixed tabs and spaces in a
command, or an input value a call already sets, which miniwdl accepts). When a WDL operation is
added, every active Cromwell server that can ``describe`` is asked about its main document; a
refusal does not stop the operation (miniwdl runs it) but is shown in its check log and in the
ingestion's progress, as a warning naming the server and what it said. Jobs sent to that server
are then refused when they start (``operations.wdl_runs.check_with_engine``). Cromwell's
describe takes no imports, so a workflow with imports is not asked about (as at run time).

The other way round, a document miniwdl refuses is shown to the same servers
(:func:`ask_cromwell_servers`, its other files as the imports zip): when one accepts it,
ingestion adds it for Cromwell servers only (``Operation.executors``), its inputs and outputs
from that server's description (:func:`wdl.signature_from_description`), miniwdl's refusal shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wdl
from executors.base import ExecutorError, ExecutorUnavailable

from .cromwell_servers import resolve_executor
from .models import CromwellServer, ServerState

logger = logging.getLogger(__name__)


def cromwell_opinions(
    bundle: wdl.Bundle, imported_files: tuple[str, ...], report: Callable[[str], None]
) -> list[str]:
    """One line per active Cromwell server that was asked (or couldn't be)."""
    if imported_files:
        return []
    servers = CromwellServer.objects.filter(state=ServerState.ACTIVE).exclude(healthy=False)
    lines: list[str] = []
    source = bundle.files[bundle.main].decode("utf-8-sig")
    for server in servers.order_by("name"):
        alias = server.executor_alias
        try:
            executor = resolve_executor(alias)
            if not executor.describes_workflows:
                continue
            described = executor.describe(source)
        except (ExecutorError, ExecutorUnavailable) as exc:
            line = f"{alias} could not be asked whether it accepts the workflow ({exc})"
        else:
            if described is None:
                line = f"{alias} has no describe endpoint: only miniwdl checked the workflow"
            elif described.get("valid", True):
                line = f"{alias} (Cromwell's describe) accepts the workflow too"
            else:
                errors = [str(e) for e in described.get("errors") or []] or ["no reason given"]
                line = (
                    f"Warning: {alias} refuses this workflow, which miniwdl accepts: "
                    f"{'; '.join(errors)}. Jobs sent to {alias} will be refused; they run "
                    "on miniwdl."
                )
        logger.info("ingestion: %s", line)
        report(line)
        lines.append(line)
    return lines


@dataclass
class CromwellVerdicts:
    """What the active registered Cromwell servers said of a document miniwdl refuses."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # alias -> description
    refused: list[str] = field(default_factory=list)  # "<alias>: <its reasons>"
    unreachable: list[str] = field(default_factory=list)  # "<alias>: <why>"

    @property
    def asked_any(self) -> bool:
        return bool(self.accepted or self.refused or self.unreachable)


def ask_cromwell_servers(bundle: wdl.Bundle, report: Callable[[str], None]) -> CromwellVerdicts:
    """Ask every active registered Cromwell server's describe about a document miniwdl refuses
    (its other files as the imports zip), once each, without retries: an operation is being
    added while the caller waits, so a server that doesn't answer within its timeouts is
    reported as such rather than waited for."""
    verdicts = CromwellVerdicts()
    source = bundle.files[bundle.main].decode("utf-8-sig")
    dependencies = wdl.bundle_files_zip(bundle)
    servers = CromwellServer.objects.filter(state=ServerState.ACTIVE).order_by("name")
    for server in servers:
        alias = server.executor_alias
        report(f"Asking {alias} (Cromwell's describe) whether it accepts {bundle.main}")
        try:
            executor = resolve_executor(alias)
            described = (
                executor.describe(source, dependencies_zip=dependencies, once=True)
                if executor.describes_workflows
                else None
            )
        except (ExecutorError, ExecutorUnavailable) as exc:
            verdicts.unreachable.append(f"{alias}: {exc}")
            continue
        if described is None:
            verdicts.unreachable.append(f"{alias}: it has no describe endpoint")
        elif described.get("valid") is True:
            verdicts.accepted[alias] = described
        else:
            errors = [str(e) for e in described.get("errors") or []] or ["no reason given"]
            verdicts.refused.append(f"{alias}: {'; '.join(errors)}")
    return verdicts
