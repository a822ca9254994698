"""A small client of Cromwell's REST API (see /work/shared/reference and executors.cromwell)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..base import ExecutorError, ExecutorUnavailable, connection_problem

API = "api/workflows/v1"
RETRY_STATUSES = (500, 502, 503, 504)
DEFAULT_TIMEOUTS = {"connect": 5.0, "read": 30.0}
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF_S = 0.5
NO_ROUTE_STATUSES = (404, 405)  # what a server without an endpoint answers
DESCRIBE_PROBE = "version 1.0\nworkflow ferry_describe_probe {}\n"


class CromwellError(ExecutorError):
    """Cromwell answered a request with a 4xx: ``status`` and its ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Cromwell answered {status}: {message}")
        self.status = status
        self.message = message


def _auth_for(auth: Mapping[str, Any] | None) -> requests.auth.AuthBase | None:
    if not auth:
        return None
    if auth.get("type") == "basic":
        return requests.auth.HTTPBasicAuth(str(auth["username"]), str(auth["password"]))
    if auth.get("type") == "bearer":
        return _BearerAuth(str(auth["token"]))
    raise ValueError(f"unknown Cromwell auth type {auth.get('type')!r}")


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _error_message(response: requests.Response) -> str:
    """The ``message`` of Cromwell's JSON error body (with its ``errors``), else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason or ""
    if not isinstance(body, dict):
        return str(body)[:300]
    message = str(body.get("message") or response.reason or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message = f"{message}: {'; '.join(str(e) for e in errors[:5])}"
    return message[:1000]


class CromwellClient:
    """A small client of Cromwell's REST API, usable on its own.

    Connection errors and 500/502/503/504 answers are retried with exponential backoff for every
    call (POSTs too: a submit carries ``requestedWorkflowId``, so a repeat can't start a second
    workflow). What still fails raises ExecutorUnavailable; a 4xx raises CromwellError, except
    401, which is ExecutorUnavailable (a configuration problem, not the job's).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Mapping[str, Any] | None = None,
        connect_timeout: float = DEFAULT_TIMEOUTS["connect"],
        read_timeout: float = DEFAULT_TIMEOUTS["read"],
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.backoff_s = backoff_s
        self.session = self._session(auth, retries, backoff_s)
        self.session_once = self._session(auth, 0, backoff_s)  # for health checks

    @staticmethod
    def _session(
        auth: Mapping[str, Any] | None, retries: int, backoff_s: float
    ) -> requests.Session:
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=retries,
            backoff_factor=backoff_s,
            backoff_max=max(backoff_s * 16, 1.0),
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.auth = _auth_for(auth)
        session.headers["Accept"] = "application/json"
        return session

    # -- plumbing --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        once: bool = False,
        accept: Sequence[int] = (),
        **kwargs: Any,
    ) -> requests.Response:
        url = f"{self.base_url}/{path}"
        session = self.session_once if once else self.session
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ExecutorUnavailable(
                f"Cromwell at {self.base_url} unreachable: {connection_problem(exc)}"
            ) from exc
        if response.status_code < 400 or response.status_code in accept:
            return response
        message = _error_message(response)
        if response.status_code >= 500:
            raise ExecutorUnavailable(
                f"Cromwell at {self.base_url} unreachable: "
                f"{response.status_code} {message}".rstrip()
            )
        if response.status_code == 401:
            raise ExecutorUnavailable(
                f"Cromwell at {self.base_url} refused Ferry's credentials (401): {message}"
            )
        raise CromwellError(response.status_code, message)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ExecutorUnavailable(
                f"Cromwell at {self.base_url} answered {path} with something that isn't JSON"
            ) from None

    # -- workflows -------------------------------------------------------------------------------

    def submit(
        self,
        *,
        source: str,
        inputs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        dependencies_zip: bytes | None = None,
        requested_id: str | None = None,
        on_hold: bool = False,
    ) -> dict[str, Any]:
        """POST a workflow; returns ``{"id", "status"}``. CromwellError(400) for a used id."""
        parts: dict[str, Any] = {
            "workflowSource": ("workflow.wdl", source.encode(), "application/octet-stream"),
            "workflowInputs": ("inputs.json", json.dumps(dict(inputs or {})), "application/json"),
            "workflowOptions": (
                "options.json",
                json.dumps(dict(options or {})),
                "application/json",
            ),
            "labels": ("labels.json", json.dumps(dict(labels or {})), "application/json"),
        }
        if dependencies_zip is not None:
            parts["workflowDependencies"] = (
                "dependencies.zip",
                dependencies_zip,
                "application/zip",
            )
        if requested_id is not None:
            parts["requestedWorkflowId"] = (None, requested_id)
        if on_hold:
            parts["workflowOnHold"] = (None, "true")
        return dict(self._json("POST", API, files=parts))

    def status(self, workflow_id: str) -> str:
        return str(self._json("GET", f"{API}/{workflow_id}/status")["status"])

    def query_ids(self, workflow_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The query results for these ids, in one request (a JSON body: no URL length limit)."""
        if not workflow_ids:
            return []
        body: list[dict[str, str]] = [{"id": wid} for wid in workflow_ids]
        body += [{"page": "1"}, {"pageSize": str(len(workflow_ids))}]
        answer = self._json("POST", f"{API}/query", json=body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ExecutorUnavailable(
                f"Cromwell at {self.base_url} answered a query without results"
            )
        return [row for row in results if isinstance(row, dict)]

    def outputs(self, workflow_id: str) -> dict[str, Any]:
        answer = self._json("GET", f"{API}/{workflow_id}/outputs")
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        return dict(outputs) if isinstance(outputs, dict) else {}

    def metadata(self, workflow_id: str, include_keys: Sequence[str] = ()) -> dict[str, Any]:
        params = [("includeKey", key) for key in include_keys]
        params.append(("expandSubWorkflows", "false"))
        answer = self._json("GET", f"{API}/{workflow_id}/metadata", params=params)
        return answer if isinstance(answer, dict) else {}

    def abort(self, workflow_id: str) -> str:
        return str(self._json("POST", f"{API}/{workflow_id}/abort").get("status", ""))

    def describe(
        self,
        source: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        dependencies_zip: bytes | None = None,
        once: bool = False,
    ) -> dict[str, Any]:
        """Cromwell's own validation (``/api/womtool/v1/describe``): ``{"valid", "errors", …}``;
        ``once``: no retries (a caller waiting on the answer, like an operation being added)."""
        parts: dict[str, Any] = {
            "workflowSource": ("workflow.wdl", source.encode(), "application/octet-stream")
        }
        if inputs is not None:
            parts["workflowInputs"] = ("inputs.json", json.dumps(dict(inputs)), "application/json")
        if dependencies_zip is not None:
            parts["workflowDependencies"] = (
                "dependencies.zip",
                dependencies_zip,
                "application/zip",
            )
        return dict(self._json("POST", "api/womtool/v1/describe", once=once, files=parts))

    def has_describe(self) -> bool:
        """Whether the server has ``/api/womtool/v1/describe`` (a tiny document, tried once)."""
        parts = {"workflowSource": ("probe.wdl", DESCRIBE_PROBE.encode(), "text/plain")}
        response = self._request(
            "POST", "api/womtool/v1/describe", once=True, accept=NO_ROUTE_STATUSES, files=parts
        )
        return response.status_code not in NO_ROUTE_STATUSES

    # -- engine ----------------------------------------------------------------------------------

    def engine_status(self) -> tuple[bool, dict[str, Any]]:
        """(all subsystems ok, ``{subsystem: {"ok", "messages"}}``); tried once."""
        response = self._request("GET", "engine/v1/status", once=True, accept=(500,))
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code == 200, body if isinstance(body, dict) else {}

    def version(self) -> str:
        response = self._request("GET", "engine/v1/version", once=True)
        try:
            return str(response.json().get("cromwell", ""))
        except (ValueError, AttributeError):
            return ""


# ------------------------------------------------------------------------------------ options
