"""Documents this server knows Cromwell's answer for: the stand-in for Cromwell accepting what
miniwdl refuses.

This server describes and runs workflows with miniwdl, so on its own it refuses every document
miniwdl refuses, where a real Cromwell accepts a few (a draft-2 declaration named ``left``, a
call named like its workflow…). A test that needs such a Cromwell registers the document first
(``POST /_test/documents``)::

    {"source": "<the WDL text, exactly as it will be sent>",
     "describe": {<what Cromwell's describe answers: name, inputs, outputs, …>},
     "run_as": "<an equivalent document miniwdl runs>"}

Then, for that exact text (compared by sha256): ``/api/womtool/v1/describe`` answers the
registered description (``valid``/``validWorkflow``/``isRunnableWorkflow`` true and the
required keys filled in unless given); a submit of it runs ``run_as`` in its place (the
workflow's metadata shows that one; its outputs must be named as the description's). Every other document is described
and run as before. ``POST /_test/reset`` forgets them; ``GET /_test/documents`` lists their
digests.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from .errors import ApiError


def digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class KnownDocuments:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any]] = {}

    def register(self, body: Any) -> str:
        if not isinstance(body, dict) or set(body) != {"source", "describe", "run_as"}:
            raise ApiError(400, "send {source, describe, run_as}")
        if not (isinstance(body["source"], str) and isinstance(body["run_as"], str)):
            raise ApiError(400, "source and run_as are WDL texts")
        described = body["describe"]
        if not isinstance(described, dict) or not described.get("name"):
            raise ApiError(400, "describe is an object with at least a name")
        key = digest(body["source"])
        with self._lock:
            self._known[key] = {"describe": described, "run_as": body["run_as"]}
        return key

    def reset(self) -> None:
        with self._lock:
            self._known.clear()

    def digests(self) -> list[str]:
        with self._lock:
            return sorted(self._known)

    def description(self, source: str) -> dict[str, Any] | None:
        with self._lock:
            known = self._known.get(digest(source))
        if known is None:
            return None
        return {
            "valid": True,
            "validWorkflow": True,
            "errors": [],
            "inputs": [],
            "outputs": [],
            "images": [],
            "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": ""},
            "importedDescriptorTypes": [],
            "meta": {},
            "parameterMeta": {},
            "isRunnableWorkflow": True,
            **known["describe"],
        }

    def runnable(self, source: str | None) -> str | None:
        """The document to run for ``source``: its registered stand-in, or itself."""
        if source is None:
            return None
        with self._lock:
            known = self._known.get(digest(source))
        return source if known is None else str(known["run_as"])
