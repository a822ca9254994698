"""The Flask application: Cromwell's REST API (v1) and the ``/_test/`` control API."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zipfile
from io import BytesIO
from typing import Any

import requests
import yaml
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import ServerConfig
from .documents import KnownDocuments
from .errors import ApiError, invalid_id, unrecognized
from .faults import FaultMiddleware, FaultSwitches, RequestCounters
from .metadata import build_metadata, filter_metadata, labels_with_id, logs_of
from .query import matches, page_of, parse_query, post_body_pairs, result_of
from .records import (
    ABORTING,
    FAILED,
    ON_HOLD,
    RUNNING,
    SUBMITTED,
    WorkflowRecord,
    WorkflowStore,
    failure,
    is_workflow_id,
    new_workflow_id,
)
from .runner import WorkflowRunner
from .simulation import SimulationSettings, Simulator
from .storage import S3Transfers
from .wdl_tools import describe

log = logging.getLogger("cromwell_server")

SUBMIT_PARTS = (
    "workflowSource",
    "workflowUrl",
    "workflowRoot",
    "workflowType",
    "workflowTypeVersion",
    "workflowInputs",
    "workflowOptions",
    "labels",
    "workflowDependencies",
    "workflowOnHold",
    "requestedWorkflowId",
)
LABEL_MAX_LENGTH = 255
URL_FETCH_TIMEOUT_S = 10.0
UNSUPPORTED_MEDIA_TYPE = (
    "The request's Content-Type is not supported. Expected:\nmultipart/form-data"
)


class CromwellTestServer:
    """State shared by the routes: records, runner or simulator, faults, counters."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        config.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = WorkflowStore(config.records_dir)
        self.faults = FaultSwitches()
        self.documents = KnownDocuments()  # Cromwell's answer for documents miniwdl refuses
        self.counters = RequestCounters()
        self.submit_lag_s = config.submit_lag_s
        # Cromwell's summarizer lags: query results miss a workflow this long after its
        # submit, while status already knows it (0: the query lags like status).
        self.query_lag_s = 0.0
        # Abort answers 404 this long after a submit (a workflow still starting).
        self.abort_lag_s = 0.0
        self.simulator = Simulator(self.default_simulation_settings())
        self.store.advance = self.simulator.advance
        transfers = S3Transfers(config) if config.s3_endpoint else None
        self.runner = WorkflowRunner(config, self.store, transfers)
        self._submit_lock = threading.Lock()

    def default_simulation_settings(self) -> SimulationSettings:
        config = self.config
        return SimulationSettings(
            config.sim_start_s,
            config.sim_run_s,
            config.sim_fail_fraction,
            config.sim_abort_s,
            config.bucket,
        )

    def start(self) -> None:
        """Reload saved workflows and rerun the real ones that were not finished."""
        records = self.store.load()
        log.info("loaded %d workflow records from %s", len(records), self.config.records_dir)
        self.runner.resume(records)

    def shutdown(self) -> None:
        self.runner.shutdown()

    # -- lookups -------------------------------------------------------------------------

    def visible_record(self, workflow_id: str) -> WorkflowRecord:
        """The record behind a path id: 400 if malformed, 404 if unknown or still lagging."""
        if not is_workflow_id(workflow_id):
            raise invalid_id(workflow_id)
        record = self.store.get(workflow_id)
        if record is None:
            raise unrecognized(workflow_id)
        return record

    def calls_of(self, record: WorkflowRecord) -> dict[str, list[dict[str, Any]]]:
        return record.calls if record.simulated else self.runner.live_calls(record)

    # -- submission ----------------------------------------------------------------------

    def submit(self, submissions: list[dict[str, Any]], ids: list[str | None]) -> list[dict]:
        """Store new workflows (refusing ids already used) and start them."""
        with self._submit_lock:
            wanted = [i for i in ids if i is not None]
            used = [i for i in wanted if self.store.exists(i)]
            if used or len(set(wanted)) != len(wanted):
                repeated = used or wanted
                raise ApiError(
                    400,
                    f"Error(s): Requested workflow IDs are already in use: {', '.join(repeated)}",
                )
            now = time.time()
            records = [
                self._new_record(fields, workflow_id or new_workflow_id(), now)
                for fields, workflow_id in zip(submissions, ids, strict=True)
            ]
            for record in records:
                self.store.add(record)
            answers = [{"id": record.id, "status": record.status} for record in records]
        for record in records:
            if record.status == SUBMITTED and not record.simulated:
                self.runner.start(record.id)
        return answers

    def _new_record(self, fields: dict[str, Any], workflow_id: str, now: float) -> WorkflowRecord:
        record = WorkflowRecord(
            id=workflow_id.lower(),
            status=ON_HOLD if fields["on_hold"] else SUBMITTED,
            submitted_at=now,
            visible_at=now + self.submit_lag_s,
            source=fields["source"],
            workflow_url=fields["url"],
            inputs=fields["inputs"],
            options=fields["options"],
            labels=fields["labels"],
            workflow_type_version=fields["type_version"],
            has_dependencies=fields["dependencies"] is not None,
        )
        if fields["dependencies"] is not None:
            folder = self.runner.workflow_dir(record.id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "dependencies.zip").write_bytes(fields["dependencies"])
        if fields["fetch_problem"]:  # Cromwell fails it while materializing, not at submit
            record.status = FAILED
            record.ended_at = now
            record.failures = [
                failure("Workflow input processing failed", failure(fields["fetch_problem"]))
            ]
        elif self.config.simulate:
            self.simulator.prepare(record, now)
        return record

    # -- changes -------------------------------------------------------------------------

    def abort(self, record: WorkflowRecord) -> str:
        starting = time.time() < record.submitted_at + self.abort_lag_s
        if record.is_terminal or starting:
            raise ApiError(
                404,
                f"Couldn't abort {record.id} because no workflow with that ID is in progress",
                kind="error",
            )
        if record.status == ABORTING:
            return ABORTING
        if record.simulated:
            with self.store.lock:
                self.simulator.abort(record, time.time())
                self.store.save(record)
            return record.status
        return self.runner.abort(record.id)

    def release_hold(self, record: WorkflowRecord) -> None:
        with self.store.lock:
            if record.status != ON_HOLD:
                raise ApiError(
                    403,
                    f"Couldn't change status of workflow {record.id} to 'Submitted' because the"
                    f" workflow is not in 'On Hold' state",
                    kind="error",
                )
            if record.simulated:
                self.simulator.release_hold(record, time.time())
                self.store.save(record)
            else:
                self.store.update(record.id, status=SUBMITTED)
        if not record.simulated:
            self.runner.start(record.id)

    def forget_all(self) -> None:
        for record in self.store.all_records():
            if not record.is_terminal and not record.simulated:
                self.runner.abort(record.id)
        self.store.forget_all()

    def bulk(self, count: int, status: str, visible_now: bool) -> list[str]:
        if not self.config.simulate:
            raise ApiError(400, "simulate_bulk needs a server started with --simulate")
        if status not in (SUBMITTED, RUNNING):
            raise ApiError(400, "status must be Submitted or Running")
        lag = 0.0 if visible_now else self.submit_lag_s
        records = self.simulator.bulk(count, time.time(), status, lag)
        self.store.add_many(records)
        return [record.id for record in records]


# -- request parsing ---------------------------------------------------------------------


def _part(name: str) -> bytes | None:
    """A multipart field, sent as a file part or a plain field."""
    if name in request.files:
        return request.files[name].read()
    if name in request.form:
        return request.form[name].encode()
    return None


def _text_part(name: str) -> str | None:
    data = _part(name)
    return None if data is None else data.decode("utf-8", errors="replace")


def _parse_structured(text: str, what: str) -> Any:
    """JSON, or YAML as Cromwell also accepts."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ApiError(400, f"Error(s): {what} is not valid yaml nor json: {error}") from None


def _check_part_names() -> None:
    names = set(request.files) | set(request.form)
    unexpected = sorted(
        name
        for name in names
        if name not in SUBMIT_PARTS and not name.startswith("workflowInputs_")
    )
    if unexpected:
        messages = [f"Unexpected body part name: {name}" for name in unexpected]
        raise ApiError(400, "Error(s): " + "\n".join(messages), errors=messages)


def _require_multipart() -> None:
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, UNSUPPORTED_MEDIA_TYPE)


def _source() -> tuple[str, str | None, str]:
    """(source, workflowUrl, why the URL could not be read): the source is sent, or read
    from ``workflowUrl`` (http or https)."""
    source = _text_part("workflowSource")
    url = (_text_part("workflowUrl") or "").strip()
    if source is not None and url:
        raise ApiError(400, "Error(s): Both workflow source and url can't be supplied")
    if source is None and not url:
        raise ApiError(400, "Error(s): Either workflowSource or workflowUrl needs to be supplied")
    if source is not None:
        return source, None, ""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ApiError(400, f"Error(s): Error while validating workflow url: {url} is not a URL")
    try:
        response = requests.get(url, timeout=URL_FETCH_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as error:
        problem = (
            f"Failed to resolve '{url}' using resolver: 'http importer (no 'relative-to' "
            f"origin)' (reason 1 of 1): {error}"
        )
        return "", url, problem
    return response.text, url, ""


def _input_sets(batch: bool) -> list[dict[str, Any]]:
    """The inputs of each workflow, with ``workflowInputs_N`` merged over them."""
    text = _text_part("workflowInputs")
    if text is None or not text.strip():
        if batch:
            raise ApiError(400, "Error(s): No inputs were provided")
        sets: list[Any] = [{}]
    else:
        parsed = _parse_structured(text, "Input file")
        sets = parsed if isinstance(parsed, list) else [parsed]
    if not sets:
        raise ApiError(400, "Nothing was submitted")
    extra_names = sorted(
        (
            name
            for name in set(request.files) | set(request.form)
            if name.startswith("workflowInputs_")
        ),
        key=lambda name: int(name.split("_", 1)[1]) if name.split("_", 1)[1].isdigit() else 0,
    )
    extras = [_parse_structured(_text_part(name) or "{}", name) for name in extra_names]
    merged = []
    for inputs in sets:
        if not isinstance(inputs, dict) or not all(isinstance(x, dict) for x in extras):
            raise ApiError(
                400,
                "Submitted inputs couldn't be processed, please check for syntactical errors",
            )
        combined = dict(inputs)
        for extra in extras:
            combined.update(extra)
        merged.append(combined)
    if not batch and len(merged) > 1:
        raise ApiError(400, "To submit more than one workflow at a time, use the batch endpoint.")
    return merged


def _labels(text: str | None) -> dict[str, str]:
    if text is None or not text.strip():
        return {}
    try:
        labels = json.loads(text)
    except ValueError as error:
        raise ApiError(400, f"Error(s): Workflow contains invalid labels JSON: {error}") from None
    return validate_labels(labels)


def validate_labels(labels: Any) -> dict[str, str]:
    if not isinstance(labels, dict):
        raise ApiError(
            400,
            'Error(s): Invalid workflow labels JSON. Expected a JsObject of "labelKey": '
            '"labelValue" values.',
        )
    problems = []
    for key, value in labels.items():
        if not isinstance(value, str):
            problems.append(f"Invalid label {key}: {value} : Labels must be strings.")
        elif not key or len(key) > LABEL_MAX_LENGTH:
            problems.append(f"Invalid label key '{key}': must be 1 to 255 characters")
        elif len(value) > LABEL_MAX_LENGTH:
            problems.append(f"Invalid label value for '{key}': at most 255 characters")
    if problems:
        raise ApiError(400, "Error(s): " + "\n".join(problems), errors=problems)
    return dict(labels)


def _options() -> dict[str, Any]:
    text = _text_part("workflowOptions")
    if text is None or not text.strip():
        return {}
    try:
        options = json.loads(text)
    except ValueError as error:
        raise ApiError(400, f"Error(s): Invalid workflow options provided: {error}") from None
    if not isinstance(options, dict):
        raise ApiError(400, "Error(s): Invalid workflow options provided: not a JSON object")
    return options


def _on_hold() -> bool:
    text = (_text_part("workflowOnHold") or "false").strip().lower()
    if text not in ("true", "false"):
        raise ApiError(400, f"Error(s): workflowOnHold must be true or false, got: {text}")
    return text == "true"


def _dependencies() -> bytes | None:
    data = _part("workflowDependencies")
    if data is None or not data:
        return None
    if not zipfile.is_zipfile(BytesIO(data)):
        raise ApiError(400, "Error(s): workflowDependencies must be a zip file")
    return data


def _requested_ids(count: int, batch: bool) -> list[str | None]:
    text = (_text_part("requestedWorkflowId") or "").strip()
    if not text:
        return [None] * count
    if batch:
        try:
            ids = json.loads(text)
        except ValueError:
            ids = None
        if not isinstance(ids, list) or len(ids) != count:
            raise ApiError(
                400,
                "Error(s): requestedWorkflowId must be a JSON list of UUIDs, one per workflow",
            )
    else:
        ids = [text]
    for workflow_id in ids:
        if not isinstance(workflow_id, str) or not is_workflow_id(workflow_id):
            raise ApiError(400, f"Error(s): Invalid requested workflow ID: {workflow_id}")
    return [workflow_id.lower() for workflow_id in ids]


def _submission(batch: bool) -> tuple[list[dict[str, Any]], list[str | None]]:
    _require_multipart()
    _check_part_names()
    source, url, fetch_problem = _source()
    common = {
        "source": source,
        "url": url,
        "fetch_problem": fetch_problem,
        "options": _options(),
        "labels": _labels(_text_part("labels")),
        "on_hold": _on_hold(),
        "dependencies": _dependencies(),
        "type_version": _text_part("workflowTypeVersion"),
    }
    input_sets = _input_sets(batch)
    ids = _requested_ids(len(input_sets), batch)
    return [{**common, "inputs": inputs} for inputs in input_sets], ids


def _json_body() -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON") from None


# -- the application ---------------------------------------------------------------------


def create_app(server: CromwellTestServer) -> Flask:
    app = Flask("cromwell_test_server")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _add_engine_routes(app, server)
    _add_workflow_routes(app, server)
    _add_control_routes(app, server)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.body()), error.status_code

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        code = error.code or 500
        kind = "fail" if code < 500 else "error"
        return jsonify({"status": kind, "message": error.description}), code

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error")
        return jsonify({"status": "error", "message": f"{type(error).__name__}: {error}"}), 500

    app.wsgi_app = FaultMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, app.url_map, server.faults, server.counters
    )
    return app


def _add_engine_routes(app: Flask, server: CromwellTestServer) -> None:
    @app.get("/engine/<version>/status", endpoint="engineStatus")
    def engine_status(version: str) -> Any:
        return {"Engine Database": {"ok": True}, "miniwdl": {"ok": True}}

    @app.get("/engine/<version>/version", endpoint="engineVersion")
    def engine_version(version: str) -> Any:
        return {"cromwell": server.config.cromwell_version}

    @app.get("/api/workflows/<version>/backends", endpoint="backends")
    def backends(version: str) -> Any:
        return {"supportedBackends": ["Local"], "defaultBackend": "Local"}

    @app.post("/api/womtool/<version>/describe", endpoint="describe")
    def describe_workflow(version: str) -> Any:
        _require_multipart()
        source, _, fetch_problem = _source()
        if fetch_problem:
            return {"valid": False, "validWorkflow": False, "errors": [fetch_problem]}
        inputs_text = _text_part("workflowInputs")
        inputs = None
        if inputs_text and inputs_text.strip():
            inputs = _parse_structured(inputs_text, "Input file")
            if not isinstance(inputs, dict):
                raise ApiError(400, "workflowInputs must be a JSON object")
        described = server.documents.description(source) or describe(source, inputs)
        refusal = server.faults.snapshot().get("describe_refuses")
        if refusal:  # fault switch: womtool refuses what miniwdl accepts
            described.update(valid=False, errors=[str(refusal)])
        return described


def _runnable(server: CromwellTestServer, submissions: list[dict[str, Any]]) -> list[dict]:
    """Each submission with the document it runs (a known document's stand-in, see
    documents.py)."""
    return [
        {**fields, "source": server.documents.runnable(fields["source"])} for fields in submissions
    ]


def _add_workflow_routes(app: Flask, server: CromwellTestServer) -> None:
    @app.post("/api/workflows/<version>", endpoint="submit")
    def submit(version: str) -> Any:
        submissions, ids = _submission(batch=False)
        return server.submit(_runnable(server, submissions), ids)[0], 201

    @app.post("/api/workflows/<version>/batch", endpoint="submitBatch")
    def submit_batch(version: str) -> Any:
        submissions, ids = _submission(batch=True)
        return jsonify(server.submit(_runnable(server, submissions), ids)), 201

    def run_query(pairs: list[tuple[str, str]]) -> Any:
        query = parse_query(pairs)
        now = time.time()
        found = []
        for record in server.store.visible(query.ids, now):
            labels = labels_with_id(record)
            if matches(query, record, labels):
                found.append((record, labels))
        listed_before = now - server.query_lag_s
        found = [item for item in found if item[0].submitted_at <= listed_before]
        newest = -1 if query.newest_first else 1
        found.sort(key=lambda item: (newest * item[0].submitted_at, item[0].id))
        results = [
            result_of(record, labels if query.with_labels else None)
            for record, labels in page_of(found, query)
        ]
        return {"results": results, "totalResultsCount": len(found)}

    @app.get("/api/workflows/<version>/query", endpoint="queryGet")
    def query_get(version: str) -> Any:
        return run_query(list(request.args.items(multi=True)))

    @app.post("/api/workflows/<version>/query", endpoint="queryPost")
    def query_post(version: str) -> Any:
        return run_query(post_body_pairs(_json_body()))

    @app.get("/api/workflows/<version>/<workflow_id>/status", endpoint="status")
    def status(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        return {"id": record.id, "status": record.status}

    @app.get("/api/workflows/<version>/<workflow_id>/outputs", endpoint="outputs")
    def outputs(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        return {"id": record.id, "outputs": record.outputs}

    @app.get("/api/workflows/<version>/<workflow_id>/logs", endpoint="logs")
    def logs(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        return logs_of(record, server.calls_of(record))

    @app.get("/api/workflows/<version>/<workflow_id>/metadata", endpoint="metadata")
    def metadata(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        with server.store.lock:
            full = build_metadata(record, server.calls_of(record))
        include = request.args.getlist("includeKey")
        exclude = request.args.getlist("excludeKey")
        return filter_metadata(full, include, exclude)

    @app.post("/api/workflows/<version>/<workflow_id>/abort", endpoint="abort")
    def abort(version: str, workflow_id: str) -> Any:
        # The workflow store answers aborts: it knows a workflow from its submit on, while
        # status and query may not list it yet. A Submitted workflow is Aborted at once.
        if not is_workflow_id(workflow_id):
            raise invalid_id(workflow_id)
        record = server.store.get_known(workflow_id)
        if record is None:
            raise ApiError(
                404,
                f"Couldn't abort {workflow_id} because no workflow with that ID is in progress",
                kind="error",
            )
        new_status = server.abort(record)
        return {"id": record.id, "status": new_status}

    @app.post("/api/workflows/<version>/<workflow_id>/releaseHold", endpoint="releaseHold")
    def release_hold(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        server.release_hold(record)
        return {"id": record.id, "status": SUBMITTED}

    @app.get("/api/workflows/<version>/<workflow_id>/labels", endpoint="labels")
    def labels(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        return {"id": record.id, "labels": labels_with_id(record)}

    @app.patch("/api/workflows/<version>/<workflow_id>/labels", endpoint="updateLabels")
    def update_labels(version: str, workflow_id: str) -> Any:
        record = server.visible_record(workflow_id)
        changes = validate_labels(_json_body())
        with server.store.lock:
            record.labels = {**record.labels, **changes}
            server.store.save(record)
        return {"id": record.id, "labels": labels_with_id(record)}


def _add_control_routes(app: Flask, server: CromwellTestServer) -> None:
    lag_keys = {"submit_lag_s", "query_lag_s", "abort_lag_s"}
    fault_keys = {
        "status_503_next",
        "drop_next",
        "down",
        "delay_s",
        "no_describe",
        "describe_refuses",
        *lag_keys,
    }
    setting_keys = {"sim_start_s", "sim_run_s", "sim_fail_fraction", "sim_abort_s", *lag_keys}

    def lags() -> dict[str, float]:
        return {key: getattr(server, key) for key in sorted(lag_keys)}

    def set_lags(body: dict[str, Any]) -> None:
        for key in lag_keys & set(body):
            setattr(server, key, float(body.pop(key)))

    def faults_view() -> dict[str, Any]:
        return {**server.faults.snapshot(), **lags()}

    def settings_view() -> dict[str, Any]:
        return {**server.simulator.settings.as_dict(), **lags()}

    def checked_body(allowed: set[str]) -> dict[str, Any]:
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "send a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, f"unknown keys: {', '.join(unknown)}")
        return body

    @app.route("/_test/faults", methods=["GET", "POST"], endpoint="_test_faults")
    def faults() -> Any:
        if request.method == "POST":
            body = checked_body(fault_keys)
            set_lags(body)
            server.faults.set(**body)
        return faults_view()

    @app.route("/_test/settings", methods=["GET", "POST"], endpoint="_test_settings")
    def settings() -> Any:
        if request.method == "POST":
            body = checked_body(setting_keys)
            set_lags(body)
            for key, value in body.items():
                setattr(server.simulator.settings, key.removeprefix("sim_"), float(value))
        return settings_view()

    @app.route("/_test/documents", methods=["GET", "POST"], endpoint="_test_documents")
    def documents() -> Any:
        if request.method == "POST":
            server.documents.register(_json_body())
        return {"documents": server.documents.digests()}

    @app.get("/_test/counters", endpoint="_test_counters")
    def counters() -> Any:
        return server.counters.snapshot()

    @app.post("/_test/reset", endpoint="_test_reset")
    def reset() -> Any:
        body = _json_body() or {}
        server.faults.reset()
        server.documents.reset()
        server.counters.reset()
        server.submit_lag_s = server.config.submit_lag_s
        server.query_lag_s = server.abort_lag_s = 0.0
        server.simulator.settings = server.default_simulation_settings()
        if isinstance(body, dict) and body.get("workflows"):
            server.forget_all()
        return {"faults": faults_view(), "counters": server.counters.snapshot()}

    @app.post("/_test/simulate_bulk", endpoint="_test_simulate_bulk")
    def simulate_bulk() -> Any:
        body = checked_body({"count", "status", "visible_now"})
        count = body.get("count")
        if not isinstance(count, int) or count < 1:
            raise ApiError(400, "count must be a positive integer")
        ids = server.bulk(
            count, str(body.get("status", RUNNING)), bool(body.get("visible_now", True))
        )
        return {"ids": ids}

    @app.get("/_test/info", endpoint="_test_info")
    def info() -> Any:
        return {
            "pid": os.getpid(),
            "work_dir": str(server.config.work_dir),
            "simulate": server.config.simulate,
            "outputs": server.config.outputs,
            "bucket": server.config.bucket,
            "workflows": len(server.store.all_records()),
        }
