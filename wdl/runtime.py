"""What a workflow's tasks ask of the machine: the ``cpu`` and ``memory`` of each task's
``runtime`` section, when they are literals (``cpu: 4``, ``memory: "30 G"``)."""

from __future__ import annotations

from dataclasses import dataclass

import WDL
from WDL._util import parse_byte_size

from wdl.loading import LoadedWorkflow


@dataclass(frozen=True)
class TaskRequest:
    task: str
    cpu: int | None  # None: not asked, or not a literal
    memory_bytes: int | None
    memory_text: str | None  # as written, e.g. "30 G"


def workflow_tasks(loaded: LoadedWorkflow) -> list[WDL.Tree.Task]:
    """Every task of the workflow's document and its imports (by name)."""
    seen: dict[tuple[str, str], WDL.Tree.Task] = {}
    pending = [loaded.document]
    while pending:
        doc = pending.pop()
        for task in doc.tasks:
            seen.setdefault((doc.pos.abspath, task.name), task)
        pending += [imp.doc for imp in doc.imports if imp.doc is not None]
    return sorted(seen.values(), key=lambda t: t.name)


def task_requests(loaded: LoadedWorkflow) -> list[TaskRequest]:
    """Each task of the workflow (its imports included) with its literal cpu and memory."""
    found = []
    for task in workflow_tasks(loaded):
        cpu: int | None = None
        memory: int | None = None
        text: str | None = None
        cpu_literal = task.runtime["cpu"].literal if "cpu" in task.runtime else None
        if isinstance(cpu_literal, WDL.Value.Int | WDL.Value.Float):
            cpu = int(-(-float(cpu_literal.value) // 1))  # rounded up, as miniwdl does
        memory_literal = task.runtime["memory"].literal if "memory" in task.runtime else None
        if isinstance(memory_literal, WDL.Value.String):
            text = str(memory_literal.value)
            try:
                memory = parse_byte_size(text)
            except ValueError:
                memory = None
        found.append(TaskRequest(task.name, cpu, memory, text))
    return found
