"""Problems with a WDL bundle, each located in a file of the bundle (line and column 1-based;
0 when the problem has no place in a file, like a broken zip archive)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypedDict

import WDL


class WdlError(TypedDict):
    """One problem: ``file`` is relative to the bundle root (``""`` for the bundle itself)."""

    file: str
    line: int
    column: int
    message: str


def format_error(error: WdlError) -> str:
    """``main.wdl:3:5: message``; the place is shortened when it is unknown."""
    if not error["file"]:
        return error["message"]
    if error["line"] <= 0:
        return f"{error['file']}: {error['message']}"
    return f"{error['file']}:{error['line']}:{error['column']}: {error['message']}"


class WorkflowInvalid(Exception):
    """The bundle can't be used as a workflow; ``errors`` lists every problem found."""

    def __init__(self, errors: list[WdlError]):
        self.errors = sorted(errors, key=lambda e: (e["file"], e["line"], e["column"]))
        first = format_error(self.errors[0]) if self.errors else "invalid workflow"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}{more}")

    def describe(self) -> str:
        """Every problem on its own line, for terminals and logs."""
        return "\n".join(format_error(e) for e in self.errors)


class NothingToRun(WorkflowInvalid):
    """miniwdl accepts the document, but it has no workflow and not exactly one task."""


class ImportNotServed(WorkflowInvalid):
    """An import the bundle reader refuses to serve (a URL, an absolute path, a file outside
    the bundle or missing): Ferry's rule, whatever the engines would do."""


class MetadataInvalid(Exception):
    """Metadata doesn't fit the workflow; ``errors`` lists ``{"path", "message"}`` problems with
    JSON paths like ``$.inputs.sample.file_types``."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        first = f"{errors[0]['path']}: {errors[0]['message']}" if errors else "invalid metadata"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}")


class ImportRefused(Exception):
    """An import that the bundle reader won't serve (outside the bundle, a URL, missing)."""


def bundle_error(message: str, file: str = "") -> WdlError:
    return {"file": file, "line": 0, "column": 0, "message": message}


def positioned_error(
    pos: WDL.Error.SourcePosition, message: str, relative: Callable[[str], str]
) -> WdlError:
    return {
        "file": relative(pos.abspath),
        "line": pos.line,
        "column": pos.column,
        "message": message,
    }


# --- miniwdl exceptions to errors -------------------------------------------------------------

_UNEXPECTED_RE = re.compile(r"^Unexpected token Token\('(?P<kind>[^']*)', (?P<value>.*)\) at line")
_EXPECTED_ITEM_RE = re.compile(r"^\s*\*\s*(?P<name>\S+)\s*$")
_TERMINALS = {
    "LBRACE": "{",
    "RBRACE": "}",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "EQUAL": "=",
    "COMMA": ",",
    "COLON": ":",
    "DOT": ".",
    "BANG": "!",
    "QMARK": "?",
    "PLUS": "+",
    "CNAME": "a name",
    "INT": "a number",
    "SIGNED_INT": "a number",
    "FLOAT": "a number",
    "SIGNED_FLOAT": "a number",
    '/"/': 'a "string"',
    "/'/": "a 'string'",
    "$END": "the end of the file",
}


def _shortened(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _terminal_name(name: str) -> str | None:
    if name in _TERMINALS:
        return _TERMINALS[name]
    if re.fullmatch(r"[A-Z][A-Z0-9]*", name):
        return name.lower()  # keywords: CALL, TASK, WORKFLOW, INPUT, ...
    return None  # lark's internal terminals (_EITHER_DELIM, __ANON_9) mean nothing to users


def syntax_message(raw: str) -> str:
    """A short message for a parser error (lark's own text lists internal token names)."""
    lines = raw.splitlines()
    match = _UNEXPECTED_RE.match(lines[0]) if lines else None
    if match is None:
        return lines[0] if lines else "syntax error"
    if match["kind"] == "$END":
        found = "the end of the file"
    else:
        value = match["value"].strip("'\"").replace("\\n", "\n").strip().splitlines()
        found = repr(_shortened(value[0])) if value else "a blank"
    expected: list[str] = []
    for line in lines[1:]:
        if line.startswith("Previous tokens"):
            break
        item = _EXPECTED_ITEM_RE.match(line)
        name = _terminal_name(item["name"]) if item else None
        if name and name not in expected:
            expected.append(name)
    message = f"syntax error: unexpected {found}"
    if expected:
        message += f"; expected {', '.join(sorted(expected))}"
    return message


def errors_from_exception(exc: BaseException, relative: Callable[[str], str]) -> list[WdlError]:
    """Every problem a miniwdl load failure carries. Imports are followed to their cause, which
    keeps its own place; its message ends by naming each import that led there
    (``(main.wdl:3:1 imports sub.wdl)``)."""
    return list(_walk(exc, relative, ()))


def _with_sites(error: WdlError, sites: tuple[str, ...]) -> WdlError:
    if sites:
        error["message"] = f"{error['message']} ({'; '.join(sites)})"
    return error


def _import_site(exc: WDL.Error.ImportError, relative: Callable[[str], str]) -> str:
    place = f"{relative(exc.pos.abspath)}:{exc.pos.line}:{exc.pos.column}"
    cause_pos = getattr(exc.__cause__, "pos", None)
    if cause_pos is None:  # MultipleValidationErrors: its errors have places, it has none
        inner = getattr(exc.__cause__, "exceptions", None) or [None]
        cause_pos = getattr(inner[0], "pos", None)
    imported = relative(cause_pos.abspath) if cause_pos is not None else ""
    return f"{place} imports {imported}" if imported else f"{place} imports it"


def _walk(
    exc: BaseException, relative: Callable[[str], str], sites: tuple[str, ...]
) -> Iterator[WdlError]:
    if isinstance(exc, WDL.Error.MultipleValidationErrors):
        for inner in exc.exceptions:
            yield from _walk(inner, relative, sites)
    elif isinstance(exc, WDL.Error.SyntaxError):
        yield _with_sites(positioned_error(exc.pos, syntax_message(str(exc)), relative), sites)
    elif isinstance(exc, WDL.Error.ValidationError):
        message = str(exc) or type(exc).__name__
        yield _with_sites(positioned_error(exc.pos, message, relative), sites)
    elif isinstance(exc, WDL.Error.ImportError):
        cause = exc.__cause__
        if isinstance(
            cause,
            WDL.Error.SyntaxError
            | WDL.Error.ValidationError
            | WDL.Error.MultipleValidationErrors
            | WDL.Error.ImportError,
        ):
            yield from _walk(cause, relative, (*sites, _import_site(exc, relative)))
        else:
            reason = f": {cause}" if cause is not None and str(cause) else ""
            yield _with_sites(positioned_error(exc.pos, f"{exc}{reason}", relative), sites)
    else:
        yield bundle_error(f"{type(exc).__name__}: {exc}")
