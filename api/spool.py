"""The task path that api.storage.spool had before it moved (issue 12).

A sweep queued before the move (in the django-q broker) names its function by this dotted path; it
still runs. The schedule (migration 0012) names api.storage.spool. Remove this module once no
broker can hold a task queued by a Ferry older than the move.
"""

from .storage.spool import spool_sweep_task

__all__ = ["spool_sweep_task"]
