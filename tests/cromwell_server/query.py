"""``/api/workflows/v1/query``: parameters (GET query string or POSTed one-key objects),
filtering and paging."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .records import STATUSES, WorkflowRecord, is_workflow_id, iso_time, parse_time

QUERY_KEYS = (
    "id",
    "name",
    "status",
    "label",
    "labelor",
    "excludeLabelAnd",
    "excludeLabelOr",
    "submission",
    "start",
    "end",
    "page",
    "pageSize",
    "additionalQueryResultFields",
    "includeSubworkflows",
    "newestFirst",
    "metadataArchiveStatus",
)
SINGLE_VALUED = (
    "submission",
    "start",
    "end",
    "page",
    "pageSize",
    "includeSubworkflows",
    "newestFirst",
)
# Cromwell matches query keys whatever their case ("pagesize" is "pageSize").
_CANONICAL_KEYS = {key.lower(): key for key in QUERY_KEYS}
ARCHIVE_STATUSES = ("Unarchived", "Archived", "ArchivedAndDeleted", "ArchiveFailed")
UNARCHIVED = "Unarchived"
_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")


@dataclass
class WorkflowQuery:
    ids: list[str] | None = None
    names: set[str] = field(default_factory=set)
    statuses: set[str] = field(default_factory=set)
    labels_all: list[tuple[str, str]] = field(default_factory=list)
    labels_any: list[tuple[str, str]] = field(default_factory=list)
    exclude_all: list[tuple[str, str]] = field(default_factory=list)
    exclude_any: list[tuple[str, str]] = field(default_factory=list)
    submitted_from: float | None = None
    started_from: float | None = None
    ended_until: float | None = None
    page: int = 1
    page_size: int | None = None
    with_labels: bool = False
    newest_first: bool = True
    archive_statuses: set[str] = field(default_factory=set)


def post_body_pairs(body: Any) -> list[tuple[str, str]]:
    """The POST form: a JSON array of one-key objects whose values are strings."""
    if not isinstance(body, list):
        raise ApiError(400, "The query body must be a JSON array of one-key objects")
    pairs = []
    for item in body:
        if not isinstance(item, dict) or len(item) != 1:
            raise ApiError(400, f"Each query parameter must be a one-key object, got: {item}")
        ((key, value),) = item.items()
        if not isinstance(value, str):
            raise ApiError(400, f"The value of query parameter {key} must be a string: {value}")
        pairs.append((key, value))
    return pairs


def _label(text: str, key: str) -> tuple[str, str]:
    name, separator, value = text.partition(":")
    if not separator or not name:
        raise ApiError(400, f"{key} values must look like label-key:label-value, got: {text}")
    return name, value


def _integer(text: str, key: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ApiError(400, f"{key} must be an integer: {text}") from None
    if number < 1:
        raise ApiError(400, f"{key} must be at least 1: {text}")
    return number


def _time(text: str, key: str) -> float:
    try:
        return parse_time(text)
    except ValueError:
        raise ApiError(400, f"{key} must be an ISO 8601 date-time: {text}") from None


def _canonical_keys(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs with their keys spelt as Cromwell documents them (it ignores case)."""
    unknown = sorted({key for key, _ in pairs if key.lower() not in _CANONICAL_KEYS})
    if unknown:
        raise ApiError(400, f"Unrecognized query keys: {', '.join(unknown)}")
    canonical = [(_CANONICAL_KEYS[key.lower()], value) for key, value in pairs]
    for key in SINGLE_VALUED:
        if sum(1 for k, _ in canonical if k == key) > 1:
            raise ApiError(400, f"{key} may be specified at most once")
    return canonical


def _boolean(text: str, key: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise ApiError(400, f"{key} must be true or false: {text}")
    return text.strip().lower() == "true"


def parse_query(pairs: list[tuple[str, str]]) -> WorkflowQuery:
    """Validate query parameters as Cromwell does; raises ApiError(400)."""
    pairs = _canonical_keys(pairs)
    query = WorkflowQuery()
    ids: list[str] = []
    for key, value in pairs:
        if key == "id":
            if not is_workflow_id(value):
                raise ApiError(400, f"Invalid workflow ID: '{value}'.")
            ids.append(value.lower())
        elif key == "name":
            if not _NAME.match(value):
                raise ApiError(
                    400, f"Name values do not match allowed workflow name pattern: {value}"
                )
            query.names.add(value)
        elif key == "status":
            if value not in STATUSES:
                raise ApiError(400, f"Unrecognized status values: {value}")
            query.statuses.add(value)
        elif key == "label":
            query.labels_all.append(_label(value, key))
        elif key == "labelor":
            query.labels_any.append(_label(value, key))
        elif key == "excludeLabelAnd":
            query.exclude_all.append(_label(value, key))
        elif key == "excludeLabelOr":
            query.exclude_any.append(_label(value, key))
        elif key == "submission":
            query.submitted_from = _time(value, key)
        elif key == "start":
            query.started_from = _time(value, key)
        elif key == "end":
            query.ended_until = _time(value, key)
        elif key == "page":
            query.page = _integer(value, key)
        elif key == "pageSize":
            query.page_size = _integer(value, key)
        elif key == "additionalQueryResultFields":
            query.with_labels = query.with_labels or value == "labels"
        elif key == "includeSubworkflows":
            _boolean(value, key)
        elif key == "newestFirst":
            query.newest_first = _boolean(value, key)
        elif key == "metadataArchiveStatus":
            if value not in ARCHIVE_STATUSES:
                raise ApiError(400, f"Unrecognized metadata archive status: {value}")
            query.archive_statuses.add(value)
    if ids:
        query.ids = list(dict.fromkeys(ids))
    return query


def _has_label(labels: dict[str, str], label: tuple[str, str]) -> bool:
    return labels.get(label[0]) == label[1]


def matches(query: WorkflowQuery, record: WorkflowRecord, labels: dict[str, str]) -> bool:
    if query.archive_statuses and UNARCHIVED not in query.archive_statuses:
        return False  # this server never archives metadata
    if query.statuses and record.status not in query.statuses:
        return False
    if query.names and record.name not in query.names:
        return False
    if query.labels_all and not all(_has_label(labels, x) for x in query.labels_all):
        return False
    if query.labels_any and not any(_has_label(labels, x) for x in query.labels_any):
        return False
    if query.exclude_all and all(_has_label(labels, x) for x in query.exclude_all):
        return False
    if query.exclude_any and any(_has_label(labels, x) for x in query.exclude_any):
        return False
    if query.submitted_from is not None and record.submitted_at < query.submitted_from:
        return False
    if query.started_from is not None and (
        record.started_at is None or record.started_at < query.started_from
    ):
        return False
    return query.ended_until is None or (
        record.ended_at is not None and record.ended_at <= query.ended_until
    )


def result_of(record: WorkflowRecord, labels: dict[str, str] | None) -> dict[str, Any]:
    """One entry of ``results``; absent times and names are left out as Cromwell does."""
    result: dict[str, Any] = {"id": record.id, "status": record.status}
    optional = {
        "name": record.name,
        "submission": iso_time(record.submitted_at),
        "start": iso_time(record.started_at),
        "end": iso_time(record.ended_at),
    }
    result.update({key: value for key, value in optional.items() if value is not None})
    result["metadataArchiveStatus"] = UNARCHIVED
    if labels is not None:
        result["labels"] = labels
    return result


def page_of(items: list[Any], query: WorkflowQuery) -> list[Any]:
    if query.page_size is None:
        return items
    first = (query.page - 1) * query.page_size
    return items[first : first + query.page_size]
