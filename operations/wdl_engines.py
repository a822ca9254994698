"""What the registered Cromwell servers say about a WDL operation miniwdl accepted.

Cromwell and miniwdl disagree on a few documents (womtool refuses mixed tabs and spaces in a
command, or an input value a call already sets, which miniwdl accepts). When a WDL operation is
added, every active Cromwell server that can ``describe`` is asked about its main document; a
refusal does not stop the operation (miniwdl runs it) but is shown in its check log and in the
ingestion's progress, as a warning naming the server and what it said. Jobs sent to that server
are then refused when they start (``operations.wdl_runs.check_with_engine``). Cromwell's
describe takes no imports, so a workflow with imports is not asked about (as at run time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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
