"""The task paths that api.storage.transfers had before it moved (issue 12).

Tasks queued before the move (in the django-q broker) name their function by this dotted path;
they still run. New tasks and the schedules (migration 0012) name api.storage.transfers. Remove this
module once no broker can hold a task queued by a Ferry older than the move.
"""

from .storage.transfers import pending_uploads_expire, verify_upload

__all__ = ["pending_uploads_expire", "verify_upload"]
