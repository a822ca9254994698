"""Run WDL workflows on a Cromwell server through its REST API (always ``/api/workflows/v1``).

Configured in ``settings.EXECUTORS``::

    "cromwell": {
        "BACKEND": "executors.cromwell.CromwellExecutor",
        "OPTIONS": {
            "url": "http://cromwell.example.org:8000",
            # optional:
            "auth": {"type": "basic", "username": "ferry", "password": "…"},  # or
                    # {"type": "bearer", "token": "…"}; None: no auth
            "timeouts": {"connect": 5, "read": 30},       # seconds, per HTTP request
            "retries": 4, "backoff_s": 0.5,               # on connection errors and 500/502/503/504
            "query_page_size": 1000,                      # workflow ids per query request
            "workflow_options": {"final_workflow_outputs_dir": "s3://bucket/out"},
            "post_submit_grace_s": 60,                    # see "Polling" below; None: never ask
            "fail_unknown_after_s": 600,                  # see "Polling" below; None: never
            "local_roots": ["/srv/cromwell-executions"],  # see "Local paths" below
        },
    }

Run spec (``job.run_spec``, built by ``operations`` for a WDL job bound to Cromwell)::

    {"workflow_source": "version 1.0\\nworkflow wf { … }",   # the main WDL document
     "workflow_dependencies_zip_b64": "<base64 zip of imported files>" | None,
     "workflow_name": "wf",                                  # prefix of input/output names
     "inputs": {"wf.x": 3, "wf.reads": "s3://bucket/key"},
     "outputs": {"summary": {"type": "file", "many": False}, "count": {"type": "integer"}},
     "labels": {"project": "p1"},                            # optional Cromwell labels
     "options": {"use_relative_output_paths": True}}         # optional workflow options

Submitting: one multipart POST with ``requestedWorkflowId`` = the job id, so the workflow id *is*
the job id. A resubmission (after a crash, or a retried POST whose answer was lost) gets Cromwell's
400 "already in use", which means the workflow exists: it is adopted. Workflow options are the run
spec's ``options`` overridden by ``OPTIONS["workflow_options"]`` (the server's settings win); the
labels always carry ``ferry-job-id``.

Polling: one ``POST …/query`` per page of at most ``query_page_size`` ids, never one request per
job. Cromwell's query answers from summary tables that lag behind submission (by minutes on a busy
server), so an id missing from the answer is PENDING, never failed for that. This process
remembers when it first saw each id missing; once one has been missing for
``post_submit_grace_s`` it asks that workflow's status directly (at most
``STATUS_CHECKS_PER_CYCLE`` per poll, the least recently asked first): a status answers for it.
Status can answer 404 for a while after a submit too; only Cromwell's own word, sustained, makes
a workflow MISSING (Ferry then fails the job, saying Cromwell does not know it): 404 to
``NOT_FOUND_CHECKS`` status requests in a row, over at least ``NOT_FOUND_SPAN_S`` (or the whole
window, if shorter), ``fail_unknown_after_s`` or more after the submit (``job.submitted_at`` when
the job has it, else the first 404 this process saw).

Outputs: Cromwell names them ``<workflow_name>.<output>``. Non-file outputs go to
``Collected.values``; outputs holding files (``"type": "file"`` in the run spec, with their
``shape``) go to ``Collected.file_outputs`` with their structure kept (arrays, maps, pairs,
structs: ``wdl/outputs.py``), and their files flattened into ``Collected.remote_files`` when they
are URIs (``s3://``, ``gs://``…), for Ferry to relocate.

Local paths: Cromwell's local backend reports absolute paths on its own machine. Ferry reads a
local path (an output file, a call's stdout/stderr) only if it resolves inside one of
``OPTIONS["local_roots"]`` (a shared file system); outputs there go to ``Collected.files``.
Anything else is never opened: a server could otherwise name any file on this machine.

Failures: ``collect()`` treats a status 404 as "Polling" does (asked again later unless
sustained); it asks for a trimmed metadata (status, failures and per-call status, return
code and logs) and tells the user the root cause, the failing call, its return code and where its
stderr is; ``error_detail`` holds the whole failure tree for staff. ``logs()`` lists each call's
stdout/stderr locations, with the content of those under ``local_roots``. ``cleanup()`` does
nothing: Cromwell keeps its own records.

Cancelling: one ``POST …/abort`` per call, never a sleep: the caller's next poll cycle tries
again (a job stays CANCELLING meanwhile). A refused abort (404 while a workflow is still starting)
is followed by one status request: a workflow already final is not an error; one in progress
raises ExecutorUnavailable (tried again next cycle) until the abort has been refused for
``fail_unknown_after_s``, then ExecutorError says so. A workflow Cromwell doesn't know at all
(status 404 too) is treated as in "Polling" (a job never recorded as submitted waits
``post_submit_grace_s`` only): then there is nothing to stop.

Unreachable (connection errors, timeouts, 5xx after the retries, 401) is ExecutorUnavailable
everywhere: Ferry leaves the jobs as they are and tries again. ``health()`` (engine status and
version, and whether ``describe`` exists, for the admin page) and ``describe()`` (Cromwell's own
validation of a document; None from a Cromwell without that endpoint: older than 41, or behind a
gateway that doesn't pass it) complete the picture. ``CromwellClient`` needs no Django.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import wdl
from wdl.outputs import OutputShapeError, Position, engine_shape, output_name, rebuild

from ..base import (
    Collected,
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Observation,
    RunnableJob,
    RunState,
)
from ..specs import WdlRunSpec
from .client import (
    DEFAULT_BACKOFF_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUTS,
    NO_ROUTE_STATUSES,
    CromwellClient,
    CromwellError,
)

DEFAULT_PAGE_SIZE = 1000
DEFAULT_GRACE_S = 60.0
DEFAULT_FAIL_UNKNOWN_AFTER_S = 600.0
STATUS_CHECKS_PER_CYCLE = 20  # direct status checks of ids missing from the query, per poll
NOT_FOUND_CHECKS = 3  # status 404s in a row before Cromwell's "not found" counts
NOT_FOUND_SPAN_S = 60.0  # ... spread over at least this long (or the whole window, if shorter)
FORGET_AFTER_S = 86400.0  # what the poll knows of an id missing from the query, kept at most
JOB_LABEL = "ferry-job-id"
WORKSPACE_LABEL = "ferry-workspace"


def workflow_labels(job_id: UUID, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The Cromwell labels of a job's workflow: ``extra`` (as text) and always ``ferry-job-id``
    naming the job, which no other label can replace. The one place the label is set."""
    labels = {str(key): str(value) for key, value in (extra or {}).items()}
    labels[JOB_LABEL] = str(job_id)
    return labels


TERMINAL = frozenset({"Succeeded", "Failed", "Aborted"})
DUPLICATE_ID_HINTS = ("already in use", "already exists", "duplicate")
# Metadata keys for a failure report; Cromwell matches them at the workflow and the call level.
FAILURE_KEYS = (
    "status",
    "failures",
    "calls",
    "executionStatus",
    "returnCode",
    "stderr",
    "stdout",
    "shardIndex",
    "attempt",
)
LOG_KEYS = ("calls", "stdout", "stderr", "shardIndex", "attempt")

MESSAGE_CHARS = 500
MESSAGE_LINES = 5
TAIL_BYTES = 64 * 1024
TAIL_LINES = 200


def run_state(cromwell_status: str) -> RunState:
    """Map a Cromwell workflow status to a RunState (unknown ones count as pending)."""
    if cromwell_status in ("Running", "Aborting"):
        return RunState.RUNNING
    if cromwell_status in TERMINAL:
        return RunState.EXITED
    return RunState.PENDING  # "Submitted", "On Hold" and anything newer


def check_options(options: Any) -> list[str]:
    """Problems with a Cromwell executor's OPTIONS dict, as sentences."""
    if not isinstance(options, dict):
        return ["OPTIONS must be a dict"]
    return _connection_problems(options) + _number_problems(options) + _workflow_problems(options)


def _connection_problems(options: dict[str, Any]) -> list[str]:
    """How to reach the server: its URL, auth and per-request timeouts."""
    problems = []
    url = options.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append("OPTIONS['url'] must be an http:// or https:// URL")
    problems += _auth_problems(options.get("auth"))
    timeouts = options.get("timeouts") or {}
    if not isinstance(timeouts, dict) or any(
        key not in DEFAULT_TIMEOUTS or not _is_number(value) or value <= 0
        for key, value in timeouts.items()
    ):
        problems.append("OPTIONS['timeouts'] must map 'connect' and 'read' to positive seconds")
    return problems


def _number_problems(options: dict[str, Any]) -> list[str]:
    """The counts (page size, retries) and the waits in seconds (None allowed)."""
    problems = []
    for key, smallest in (("query_page_size", 1), ("retries", 0)):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or value < smallest):
            problems.append(f"OPTIONS[{key!r}] must be an integer of at least {smallest}")
    for key in ("backoff_s", "post_submit_grace_s", "fail_unknown_after_s"):
        value = options.get(key)
        if value is not None and (not _is_number(value) or value < 0):
            problems.append(f"OPTIONS[{key!r}] must be a number of seconds (or None)")
    return problems


def _workflow_problems(options: dict[str, Any]) -> list[str]:
    """What workflows run with: their options, the bucket prefixes for inputs and outputs, and
    the local roots Ferry may read."""
    problems = []
    if not isinstance(options.get("workflow_options") or {}, dict):
        problems.append("OPTIONS['workflow_options'] must be a dict")
    for key in ("inputs_location", "outputs_location"):
        location = options.get(key)
        if location is not None and not _is_bucket_prefix(location):
            problems.append(
                f"OPTIONS[{key!r}] must be a bucket prefix such as s3://bucket/prefix/ or "
                "gs://bucket/prefix/"
            )
    roots = options.get("local_roots") or []
    if not isinstance(roots, list) or not all(
        isinstance(root, str) and os.path.isabs(root) for root in roots
    ):
        problems.append("OPTIONS['local_roots'] must be a list of absolute paths")
    return problems


ENVIRONMENT_PREFIX = "FERRY_CROMWELL_"
# Variable suffix -> option, for what a registered server's options can set (read as text).
_TEXT_VARIABLES = {"INPUTS_LOCATION": "inputs_location", "OUTPUTS_LOCATION": "outputs_location"}
_SECONDS_VARIABLES = {
    "POST_SUBMIT_GRACE_S": "post_submit_grace_s",
    "FAIL_UNKNOWN_AFTER_S": "fail_unknown_after_s",
    "BACKOFF_S": "backoff_s",
}
_INTEGER_VARIABLES = {"QUERY_PAGE_SIZE": "query_page_size", "RETRIES": "retries"}
_TIMEOUT_VARIABLES = {"CONNECT_TIMEOUT_S": "connect", "READ_TIMEOUT_S": "read"}


def options_from_environment(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The OPTIONS of the Cromwell executor that ``FERRY_CROMWELL_*`` variables describe (None
    without ``FERRY_CROMWELL_URL``): whatever a registered server's options can set. Raises
    ValueError naming the variable whose text can't be read; ``check_options`` judges values."""

    def text(suffix: str) -> str:
        return environ.get(ENVIRONMENT_PREFIX + suffix, "").strip()

    if not text("URL"):
        return None
    options: dict[str, Any] = {"url": text("URL"), "auth": _auth_from_environment(environ)}
    for suffix, key in _TEXT_VARIABLES.items():
        if text(suffix):
            options[key] = text(suffix)
    if text("LOCAL_ROOTS"):
        options["local_roots"] = [root.strip() for root in text("LOCAL_ROOTS").split(",") if root]
    options.update(_numbers_from_environment(text))
    if text("WORKFLOW_OPTIONS"):
        try:
            options["workflow_options"] = json.loads(text("WORKFLOW_OPTIONS"))
        except ValueError as exc:
            raise ValueError(
                f"{ENVIRONMENT_PREFIX}WORKFLOW_OPTIONS is not a JSON object: {exc}"
            ) from None
    return options


def _auth_from_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """Bearer auth with ``…_TOKEN``, else basic auth with ``…_USERNAME`` (and ``…_PASSWORD``,
    taken as it is), else none."""
    token = environ.get(ENVIRONMENT_PREFIX + "TOKEN", "").strip()
    username = environ.get(ENVIRONMENT_PREFIX + "USERNAME", "").strip()
    if token:
        return {"type": "bearer", "token": token}
    if username:
        return {
            "type": "basic",
            "username": username,
            "password": environ.get(ENVIRONMENT_PREFIX + "PASSWORD", ""),
        }
    return None


def _numbers_from_environment(text: Callable[[str], str]) -> dict[str, Any]:
    """The options read as numbers: waits in seconds (``none`` for None), counts, timeouts."""
    options: dict[str, Any] = {}
    for suffix, key in _SECONDS_VARIABLES.items():
        if text(suffix).lower() == "none":
            options[key] = None
        elif text(suffix):
            options[key] = _number_variable(suffix, text(suffix), float)
    for suffix, key in _INTEGER_VARIABLES.items():
        if text(suffix):
            options[key] = _number_variable(suffix, text(suffix), int)
    timeouts = {
        key: _number_variable(suffix, text(suffix), float)
        for suffix, key in _TIMEOUT_VARIABLES.items()
        if text(suffix)
    }
    if timeouts:
        options["timeouts"] = timeouts
    return options


def _number_variable(suffix: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number of seconds (or none)"
        raise ValueError(f"{ENVIRONMENT_PREFIX}{suffix} must be {what}, not {value!r}") from None


def _auth_problems(auth: Any) -> list[str]:
    if auth is None:
        return []
    if not isinstance(auth, dict):
        return ["OPTIONS['auth'] must be a dict or None"]
    if auth.get("type") == "basic":
        if not (isinstance(auth.get("username"), str) and isinstance(auth.get("password"), str)):
            return ["OPTIONS['auth'] of type 'basic' needs a 'username' and a 'password'"]
        return []
    if auth.get("type") == "bearer":
        if not isinstance(auth.get("token"), str) or not auth["token"]:
            return ["OPTIONS['auth'] of type 'bearer' needs a 'token'"]
        return []
    return ["OPTIONS['auth']['type'] must be 'basic' or 'bearer'"]


def _is_bucket_prefix(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    scheme, sep, rest = value.partition("://")
    return bool(sep and scheme.isalnum() and rest.split("/", 1)[0])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------ helpers


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_uri(ref: str) -> bool:
    scheme, sep, rest = ref.partition("://")
    return bool(sep and rest and scheme.isascii() and scheme.replace("+", "").isalnum())


def _tail_lines(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    if lines <= 0:
        return ""
    return "".join(text.splitlines(keepends=True)[-lines:])


@dataclass(frozen=True)
class CallAttempt:
    """One attempt of one call (or scatter shard) from Cromwell's metadata."""

    name: str
    shard: int
    attempt: int
    status: str
    return_code: int | None
    stdout: str
    stderr: str
    failures: list[Any]

    @property
    def label(self) -> str:
        shard = f" shard {self.shard}" if self.shard >= 0 else ""
        attempt = f" attempt {self.attempt}" if self.attempt > 1 else ""
        return f"{self.name}{shard}{attempt}"


def _call_attempts(metadata: Mapping[str, Any]) -> list[CallAttempt]:
    calls = metadata.get("calls")
    attempts = []
    for name, entries in calls.items() if isinstance(calls, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict):
                continue
            return_code = entry.get("returnCode")
            attempts.append(
                CallAttempt(
                    name=str(name),
                    shard=_int(entry.get("shardIndex"), -1),
                    attempt=_int(entry.get("attempt"), 1),
                    status=str(entry.get("executionStatus") or ""),
                    return_code=return_code if isinstance(return_code, int) else None,
                    stdout=str(entry.get("stdout") or ""),
                    stderr=str(entry.get("stderr") or ""),
                    failures=list(entry.get("failures") or []),
                )
            )
    return sorted(attempts, key=lambda a: (a.name, a.shard, a.attempt))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _root_cause(failures: Sequence[Any]) -> str:
    """The deepest message of a nested ``[{"message", "causedBy": [...]}]`` failure tree."""
    best, best_depth = "", -1
    stack = [(failure, 0) for failure in reversed(failures)]
    while stack:
        failure, depth = stack.pop()
        if not isinstance(failure, dict):
            continue
        message = str(failure.get("message") or "").strip()
        if message and depth > best_depth:
            best, best_depth = message, depth
        causes = failure.get("causedBy")
        if isinstance(causes, list):
            stack += [(cause, depth + 1) for cause in reversed(causes)]
    return best


def _failing_calls(attempts: Sequence[CallAttempt]) -> list[CallAttempt]:
    """The last attempt of each call or shard that failed."""
    last: dict[tuple[str, int], CallAttempt] = {}
    for attempt in attempts:
        last[(attempt.name, attempt.shard)] = attempt  # sorted: the last attempt wins
    return [a for a in last.values() if a.status == "Failed"]


# ----------------------------------------------------------------------------------- executor


class CromwellExecutor(Executor):
    modes = ("wdl",)
    engine_name = "The Cromwell server"
    reads_buckets = True  # inputs are given as bucket URIs its backend reads
    describes_workflows = True  # Cromwell's describe endpoint (see describe())

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        super().__init__(alias, options)
        problems = check_options(options)
        if problems:
            raise ExecutorError(f"executor {alias!r} is misconfigured: {'; '.join(problems)}")
        timeouts = {**DEFAULT_TIMEOUTS, **(options.get("timeouts") or {})}
        self.client = CromwellClient(
            options["url"],
            auth=options.get("auth"),
            connect_timeout=float(timeouts["connect"]),
            read_timeout=float(timeouts["read"]),
            retries=int(options.get("retries", DEFAULT_RETRIES)),
            backoff_s=float(options.get("backoff_s", DEFAULT_BACKOFF_S)),
        )
        self.page_size = int(options.get("query_page_size") or DEFAULT_PAGE_SIZE)
        self.workflow_options: dict[str, Any] = dict(options.get("workflow_options") or {})
        grace = options.get("post_submit_grace_s", DEFAULT_GRACE_S)
        self.post_submit_grace_s: float | None = None if grace is None else float(grace)
        unknown = options.get("fail_unknown_after_s", DEFAULT_FAIL_UNKNOWN_AFTER_S)
        self.fail_unknown_after_s: float | None = None if unknown is None else float(unknown)
        self.local_roots = [Path(root).resolve() for root in options.get("local_roots") or []]
        self._absent_since: dict[str, float] = {}  # poll: ids missing from query results
        self._status_asked_at: dict[str, float] = {}  # poll: when each absent id was last asked
        self._not_found: dict[str, _NotFound] = {}  # status 404s in a row, per id
        self._abort_refused_since: dict[str, float] = {}  # cancel: aborts answered 404
        self._lock = threading.Lock()

    @classmethod
    def check_options(cls, options: Any) -> list[str]:
        """Problems with an OPTIONS dict, as sentences (used by the system check too)."""
        return check_options(options)

    # -- submit ----------------------------------------------------------------------------------

    def _submit(self, job: RunnableJob) -> str:
        workflow_id = str(job.id)
        spec = job.run_spec or {}
        source = spec.get("workflow_source")
        if not isinstance(source, str) or not source.strip():
            raise ExecutorError("the run has no workflow source")
        inputs = spec.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ExecutorError("the run's inputs must be a mapping of input names to values")
        labels = workflow_labels(job.id, _mapping(spec, "labels"))
        try:
            self.client.submit(
                source=source,
                inputs=inputs,
                options={**_mapping(spec, "options"), **self.workflow_options},
                labels=labels,
                dependencies_zip=_dependencies(spec),
                requested_id=workflow_id,
            )
        except CromwellError as exc:
            if exc.status == 400 and self._already_submitted(workflow_id, exc.message):
                return workflow_id
            if exc.status in (403, 404, 405):
                raise ExecutorUnavailable(
                    f"Cromwell at {self.client.base_url} did not accept the submission: {exc}"
                ) from exc
            raise ExecutorError(f"Cromwell refused the workflow: {exc.message}") from exc
        return workflow_id

    def _already_submitted(self, workflow_id: str, message: str) -> bool:
        """Whether a refused submission means the workflow exists (a repeat of a submit)."""
        if any(hint in message.lower() for hint in DUPLICATE_ID_HINTS):
            return True
        try:
            self.client.status(workflow_id)
        except CromwellError:
            return False
        return True

    # -- poll --------------------------------------------------------------------------------------

    def poll_page(self) -> int | None:
        return self.page_size

    def _poll(self, jobs: Sequence[RunnableJob]) -> dict[UUID, Observation]:
        wanted = {str(job.id).lower(): job for job in jobs}
        statuses: dict[str, str] = {}
        try:
            for chunk in _chunks(list(wanted), self.page_size):
                for row in self.client.query_ids(chunk):
                    statuses[str(row.get("id", "")).lower()] = str(row.get("status") or "")
        except CromwellError as exc:
            raise ExecutorUnavailable(f"Cromwell at {self.client.base_url}: {exc}") from exc
        observed: dict[UUID, Observation] = {}
        absent = []
        for key, job in wanted.items():
            if key in statuses:
                observed[job.id] = _observation(statuses[key])
            else:
                absent.append(key)
        observed.update(self._absent(absent, wanted))
        return observed

    def _absent(
        self, keys: Sequence[str], wanted: Mapping[str, RunnableJob]
    ) -> dict[UUID, Observation]:
        """Observations of ids the query didn't list (see "Polling" in the module docstring)."""
        now = time.monotonic()
        grace = self.post_submit_grace_s
        with self._lock:
            # A poll may ask about some of the jobs only (the poll loop asks in pages): what
            # is known of the others stays. Ids the query listed are forgotten; so are those
            # of jobs no longer followed, after FORGET_AFTER_S.
            listed = set(wanted) - set(keys)
            for key in listed & set(self._absent_since):
                del self._absent_since[key]
                self._status_asked_at.pop(key, None)
            for key in listed & set(self._not_found):
                del self._not_found[key]
            self._forget_old(now)
            for key in keys:
                self._absent_since.setdefault(key, now)
            due = [
                key for key in keys if grace is not None and now - self._absent_since[key] >= grace
            ]
            due.sort(key=lambda key: self._status_asked_at.get(key, 0.0))
            asked = due[:STATUS_CHECKS_PER_CYCLE]
            for key in asked:
                self._status_asked_at[key] = now
        observed = {
            wanted[key].id: Observation(RunState.PENDING, "still submitting") for key in keys
        }
        for key in asked:
            job = wanted[key]
            try:
                status = self.client.status(key)
            except CromwellError as exc:
                if exc.status != 404:
                    raise ExecutorUnavailable(f"Cromwell at {self.client.base_url}: {exc}") from exc
                denial = self._denied(key, job, exc)
                observed[job.id] = (
                    Observation(RunState.MISSING, denial)
                    if denial
                    else Observation(
                        RunState.PENDING, "still submitting (status answers 404 for now)"
                    )
                )
                continue
            self._forget_not_found(key)
            observed[job.id] = _observation(status)
        return observed

    def _forget_old(self, now: float) -> None:
        """(Under the lock.) Drop what is known of ids first missed FORGET_AFTER_S ago."""
        for key in [k for k, since in self._absent_since.items() if now - since > FORGET_AFTER_S]:
            del self._absent_since[key]
            self._status_asked_at.pop(key, None)
        for key in [k for k, seen in self._not_found.items() if now - seen.first > FORGET_AFTER_S]:
            del self._not_found[key]

    def _denied(
        self, key: str, job: RunnableJob, exc: CromwellError, window: float | None = None
    ) -> str:
        """Count a status 404 for ``key``; when Cromwell's "not found" has been sustained long
        enough after the submit (see "Polling"), what to tell the user, else ""."""
        now = time.monotonic()
        with self._lock:
            seen = self._not_found.get(key)
            if seen is None:
                seen = self._not_found[key] = _NotFound(first=now, first_wall=time.time())
            seen.count += 1
            count, first, first_wall = seen.count, seen.first, seen.first_wall
        window = self.fail_unknown_after_s if window is None else window
        if (
            window is None
            or count < NOT_FOUND_CHECKS
            or now - first < min(NOT_FOUND_SPAN_S, window)
        ):
            return ""
        submitted = _submitted_at(job)
        since = first_wall if submitted is None else submitted
        waited = time.time() - since
        if waited < window:
            return ""
        return (
            f"Cromwell at {self.client.base_url} says it does not know workflow {key}: its "
            f"status answered 404 ({exc.message}) {count} times in a row, "
            f"{_duration(waited)} after the submit."
        )

    def _forget_not_found(self, key: str) -> None:
        with self._lock:
            self._not_found.pop(key, None)

    # -- cancel ------------------------------------------------------------------------------------

    def _cancel(self, job: RunnableJob) -> None:
        """Abort the workflow: one request, no sleep (see "Cancelling" in the module docstring).
        ExecutorUnavailable: not yet, the caller tries again later; ExecutorError: Cromwell
        refused the abort for too long."""
        workflow_id = str(job.id).lower()
        try:
            self.client.abort(workflow_id)
        except CromwellError as exc:
            refusal = exc
        else:
            self._forget_abort(workflow_id)
            return
        # Cromwell refuses to abort what is final (404, or 403 on older versions) and what is
        # still starting (404): its status tells which.
        try:
            status = self.client.status(workflow_id)
        except CromwellError as exc:
            if exc.status != 404:
                raise ExecutorUnavailable(f"Cromwell at {self.client.base_url}: {exc}") from exc
            accepted = _submitted_at(job) is not None
            grace = (
                DEFAULT_GRACE_S if self.post_submit_grace_s is None else self.post_submit_grace_s
            )
            if self._denied(workflow_id, job, exc, None if accepted else grace):
                self._forget_abort(workflow_id)
                return  # Cromwell doesn't know it: nothing to stop
            raise ExecutorUnavailable(
                f"Cromwell does not know workflow {workflow_id} yet (abort and status answer "
                "404); the abort will be tried again"
            ) from exc
        self._forget_not_found(workflow_id)
        if status in TERMINAL:
            self._forget_abort(workflow_id)
            return
        now = time.monotonic()
        with self._lock:
            refused_for = now - self._abort_refused_since.setdefault(workflow_id, now)
        limit = self.fail_unknown_after_s
        if limit is not None and refused_for >= limit:
            self._forget_abort(workflow_id)
            raise ExecutorError(
                f"Cromwell at {self.client.base_url} refused to abort workflow {workflow_id} for "
                f"{_duration(refused_for)} ({refusal}) while it reports it {status}; it may "
                "still be running there."
            )
        raise ExecutorUnavailable(
            f"Cromwell did not abort workflow {workflow_id} yet ({status}: {refusal}); the "
            "abort will be tried again"
        )

    def _forget_abort(self, workflow_id: str) -> None:
        with self._lock:
            self._abort_refused_since.pop(workflow_id, None)
            self._not_found.pop(workflow_id, None)

    def _cleanup(self, job: RunnableJob) -> None:
        """Nothing to remove: Cromwell keeps its records of the workflow."""

    # -- collect -----------------------------------------------------------------------------------

    def _collect(self, job: RunnableJob) -> Collected:
        workflow_id = str(job.id)
        try:
            status = self.client.status(workflow_id)
        except CromwellError as exc:
            if exc.status != 404:
                raise
            denial = self._denied(workflow_id, job, exc)  # only a sustained 404 fails it
            if not denial:
                raise ExecutorUnavailable(
                    f"Cromwell at {self.client.base_url} answered 404 for the status of "
                    f"workflow {workflow_id}; it will be asked again"
                ) from exc
            return Collected(
                succeeded=False,
                error_message=denial,
                error_detail=f"GET status of {workflow_id}: {exc}",
            )
        self._forget_not_found(workflow_id)
        if status not in TERMINAL:  # collect() came too early: the caller retries later
            raise ExecutorUnavailable(f"the workflow is still {status}")
        if status == "Aborted":
            return Collected(succeeded=False, error_message="cancelled")
        if status == "Failed":
            return self._failure(workflow_id)
        return self._success(job)

    def _success(self, job: RunnableJob) -> Collected:
        spec = job.run_spec or {}
        declared: dict[str, Any] = spec.get("outputs") or {}
        workflow_name = str(spec.get("workflow_name") or "")
        raw = self.client.outputs(str(job.id))
        result = Collected(succeeded=True)
        for qualified, value in raw.items():
            name = output_name(qualified, declared, workflow_name, spec.get("output_names"))
            shape = engine_shape(declared.get(name))
            if shape is None:
                result.values[name] = value
                continue
            try:
                self._add_file_output(result, name, shape, value)
            except ExecutorError as exc:
                return Collected(succeeded=False, error_message=str(exc), error_detail=str(exc))
        return result

    def _add_file_output(
        self, result: Collected, name: str, shape: Mapping[str, Any], value: Any
    ) -> None:
        """The output with its structure in ``file_outputs`` (each file a URI, or a Path under
        ``local_roots``), and its files flattened into ``remote_files``/``files``."""
        if value is None:
            return  # an optional output without a value
        remote = result.remote_files.setdefault(name, [])
        local: list[Path] = []

        def resolve(position: Position, ref: str) -> str | Path:
            if _is_uri(ref):
                remote.append(ref)
                return ref
            path = self._local_path(ref)
            if path is None or not path.is_file():
                raise ExecutorError(
                    f"output {name!r} names {ref[:200]}, which is not a file this server can read"
                )
            local.append(path)
            return path

        try:
            result.file_outputs[name] = rebuild(shape, value, resolve)
        except OutputShapeError as exc:
            raise ExecutorError(exc.describe(name)) from None
        if local:
            result.files[name] = local
        if not remote and local:
            del result.remote_files[name]

    def _local_path(self, ref: str) -> Path | None:
        """The real path of ``ref`` if it is absolute and inside one of ``local_roots``."""
        if not os.path.isabs(ref) or "\x00" in ref:
            return None
        path = Path(ref).resolve()
        if any(path.is_relative_to(root) for root in self.local_roots):
            return path
        return None

    def _read_local_tail(self, ref: str, lines: int | None = TAIL_LINES) -> str | None:
        path = self._local_path(ref)
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > TAIL_BYTES:
                    fh.seek(size - TAIL_BYTES)
                    fh.readline()
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return None
        return _tail_lines(text, lines)

    def _failure(self, workflow_id: str) -> Collected:
        metadata = self.client.metadata(workflow_id, FAILURE_KEYS)
        failures = list(metadata.get("failures") or [])
        failing = _failing_calls(_call_attempts(metadata))
        call = failing[0] if failing else None
        cause = _root_cause(failures) or (_root_cause(call.failures) if call else "")
        cause = cause[:MESSAGE_CHARS] or "Cromwell reported no reason"
        stderr_tail = (self._read_local_tail(call.stderr) or "") if call and call.stderr else ""
        if call is None:
            message = f"The workflow failed: {cause}"
        else:
            code = "" if call.return_code is None else f" (return code {call.return_code})"
            others = f" and {len(failing) - 1} other call(s)" if len(failing) > 1 else ""
            message = f"The workflow failed in {call.label}{code}{others}: {cause}"
            if call.stderr:
                message += f"\nIts stderr is at {call.stderr}"
            last = [line for line in stderr_tail.splitlines() if line.strip()][-MESSAGE_LINES:]
            if last:
                message += "; its last lines:\n" + "\n".join(line[:300] for line in last)
        return Collected(
            succeeded=False,
            error_message=message,
            error_detail=_failure_detail(workflow_id, failures, failing),
            exit_code=call.return_code if call else None,
            stderr_tail=stderr_tail,
        )

    # -- logs --------------------------------------------------------------------------------------

    def _logs(self, job: RunnableJob, *, tail: int | None = None) -> tuple[str, str]:
        """Each call's stdout and stderr: a ``== call: location ==`` line, then the content if
        the location is under ``local_roots``."""
        try:
            metadata = self.client.metadata(str(job.id), LOG_KEYS)
        except CromwellError as exc:
            if exc.status == 404:
                return "", ""
            raise
        attempts = _call_attempts(metadata)
        out = self._log_sections(attempts, "stdout", tail)
        err = self._log_sections(attempts, "stderr", tail)
        return _tail_lines(out, tail), _tail_lines(err, tail)

    def _log_sections(self, attempts: Sequence[CallAttempt], stream: str, tail: int | None) -> str:
        sections = []
        for attempt in attempts:
            location = attempt.stdout if stream == "stdout" else attempt.stderr
            if not location:
                continue
            content = self._read_local_tail(location, tail) or ""
            if content and not content.endswith("\n"):
                content += "\n"
            sections.append(f"== {attempt.label}: {location} ==\n{content}")
        return "".join(sections)

    # -- preparation -----------------------------------------------------------------------------

    def prepare_wdl(self, spec: WdlRunSpec, *, job_id: UUID, workspace_id: str) -> WdlRunSpec:
        """Cromwell gets the workflow as text (its imports as a base64 zip), labels naming the
        job, and where to keep each job's call logs when the server has an outputs_location."""
        spec = WdlRunSpec(**spec)
        bundle = wdl.bundle_from_folder(Path(spec["workflow_dir"]), main=spec["main"])
        spec["workflow_source"] = bundle.files[bundle.main].decode()
        zipped = (
            wdl.bundle_files_zip(bundle)
            if spec.get("miniwdl_refuses")
            else wdl.dependencies_zip(bundle)
        )
        spec["workflow_dependencies_zip_b64"] = (
            base64.b64encode(zipped).decode() if zipped else None
        )
        spec["labels"] = workflow_labels(job_id, {WORKSPACE_LABEL: workspace_id})
        outputs_location = self.options.get("outputs_location")
        if outputs_location:  # each job's call logs kept in a known place (the server may add more)
            prefix = str(outputs_location).rstrip("/")
            spec["options"] = {"final_call_logs_dir": f"{prefix}/ferry-logs/{job_id}/"}
        return spec

    # -- validation --------------------------------------------------------------------------------

    def describe(
        self,
        source: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        dependencies_zip: bytes | None = None,
        once: bool = False,
    ) -> dict[str, Any] | None:
        """Cromwell's own check of a document (``{"valid", "errors", …}``), or None when this
        server has no describe endpoint (then the caller checks with miniwdl)."""
        try:
            return self.client.describe(
                source, inputs=inputs, dependencies_zip=dependencies_zip, once=once
            )
        except CromwellError as exc:
            if exc.status in NO_ROUTE_STATUSES:
                return None
            raise

    # -- admin -------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Reachability, version, subsystem status and whether ``describe`` exists, for the admin
        page: ``{"url", "reachable", "ok", "version", "subsystems", "describe", "error",
        "message"}``. A server without describe is still ok: workflows are checked with miniwdl."""
        health: dict[str, Any] = {
            "url": self.client.base_url,
            "reachable": False,
            "ok": False,
            "version": "",
            "subsystems": {},
            "describe": None,
            "error": "",
        }
        try:
            health["ok"], health["subsystems"] = self.client.engine_status()
            health["reachable"] = True
            health["version"] = self.client.version()
        except ExecutorError as exc:
            health["ok"] = False
            health["error"] = str(exc)
        if health["reachable"]:
            with contextlib.suppress(ExecutorError):  # unknown: nothing to say about it
                health["describe"] = self.client.has_describe()
        health["message"] = health["error"] or _subsystems_summary(health["subsystems"])
        if health["describe"] is False:
            health["message"] += (
                "; describe unavailable (/api/womtool/v1/describe answered 404): workflows are "
                "checked with miniwdl only"
            )
        return health


def _subsystems_summary(subsystems: Mapping[str, Any]) -> str:
    """ "healthy", or what the subsystems that are not ok say."""
    problems = []
    for name, state in subsystems.items():
        if isinstance(state, dict) and not state.get("ok", False):
            messages = "; ".join(str(m) for m in state.get("messages") or []) or "not ok"
            problems.append(f"{name}: {messages}")
    return "; ".join(problems) or "healthy"


@dataclass
class _NotFound:
    """Status 404s in a row for one workflow id, since ``first`` (monotonic and wall clock)."""

    first: float
    first_wall: float
    count: int = 0


def _submitted_at(job: RunnableJob) -> float | None:
    """When Cromwell accepted the job's workflow (epoch seconds), if the job records it."""
    submitted = getattr(job, "submitted_at", None)
    timestamp = getattr(submitted, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _observation(status: str) -> Observation:
    state = run_state(status)
    if status == "On Hold":
        return Observation(state, "On Hold in Cromwell (release it there to run)")
    return Observation(state, status)


def _mapping(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise ExecutorError(f"the run's {key} must be a mapping")
    return value


def _dependencies(spec: Mapping[str, Any]) -> bytes | None:
    encoded = spec.get("workflow_dependencies_zip_b64")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ExecutorError("the run's workflow dependencies are not valid base64") from None


def _failure_detail(
    workflow_id: str, failures: Sequence[Any], failing: Sequence[CallAttempt]
) -> str:
    lines = [f"Cromwell workflow {workflow_id} Failed"]
    for call in failing:
        lines.append(
            f"failed call: {call.label}, return code {call.return_code}, "
            f"stderr {call.stderr or '-'}, stdout {call.stdout or '-'}"
        )
        if call.failures:
            lines.append(json.dumps(call.failures, indent=2, sort_keys=True))
    lines.append("--- failures ---")
    lines.append(json.dumps(list(failures), indent=2, sort_keys=True))
    return "\n".join(lines)
