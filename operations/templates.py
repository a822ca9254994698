"""WebMEV-style command templates: Jinja, rendered in a sandbox, split into argv words.

WebMEV renders ``entrypoint.txt`` with Jinja over the converted input values, splits the text
with :func:`shlex.split` and runs the words without a shell. Ferry does the same, with two
differences that make it safe whatever the values hold:

- the template runs in :class:`jinja2.sandbox.SandboxedEnvironment` (no attribute games);
- every value enters the template as a placeholder word (letters and digits only), the rendered
  text is split, and only then is each placeholder replaced by its value. A value therefore
  stays inside the one word where the template put it — spaces, quotes, ``;``, ``$(…)`` and
  newlines included — and quotes written by hand around a placeholder (``-s "{{samples}}"``)
  work as in WebMEV.

Inputs without a value (optional, no default) are undefined: ``{% if samples %}`` is false and
``{{ samples }}`` renders as nothing. A value's truth is the truth of what WebMEV's converter
would give (``0`` from ``BooleanAsIntegerConverter`` is false, an empty set's CSV is false).
How an input's value is turned into text is chosen by its ``render`` key (see
:data:`RENDER_STYLES`), which the WebMEV conversion sets from the input's converter.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shlex
import traceback
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

ENTRYPOINT_NAME = "entrypoint.txt"
TEMPLATE_FILENAME = "<template>"

# How a value becomes text (what WebMEV's converter would hand to the template):
RENDER_STYLES = (
    "value",  # the value itself (numbers as written, strings as they are)
    "normalized",  # a WebMEV String: surrounding space stripped, inner spaces become "_"
    "csv",  # items (list, file paths, or a set's element ids) joined by ","
    "normalized_csv",  # items normalized as above, then joined by ","
    "space",  # items joined by " " (still one argv word)
    "json",  # a JSON array (a set: its element ids); for engines wanting an Array[String]
    "bool_int",  # a boolean as 1 or 0
    "path",  # a file's path
    "path_with_type",  # "<path>:::<RESOURCE_TYPE>"
)
TYPE_DELIMITER = ":::"

# autoescape off: the output is argv words, not HTML.
_ENVIRONMENT = SandboxedEnvironment(autoescape=False)


class TemplateProblem(ValueError):
    """The template can't be rendered; the message starts with ``entrypoint.txt:<line>``."""


def normalize_identifier(text: str) -> str:
    """WebMEV's String normalization: strip, then spaces become underscores."""
    return text.strip().replace(" ", "_")


def _element_ids(value: Any) -> list[str] | None:
    """The ids of a set (``{"elements": [{"id": …}]}``) or of one element, else None."""
    if isinstance(value, Mapping) and isinstance(value.get("elements"), list):
        return [str(e.get("id")) for e in value["elements"] if isinstance(e, Mapping)]
    if isinstance(value, Mapping) and "id" in value:
        return [str(value["id"])]
    return None


def _items(value: Any) -> list[Any]:
    ids = _element_ids(value)
    if ids is not None:
        return ids
    if isinstance(value, list | tuple):
        return [_path_of(v) for v in value]
    return [_path_of(value)]


def _path_of(value: Any) -> Any:
    if isinstance(value, Mapping) and "path" in value:
        return value["path"]
    return value


def _with_type(value: Any, input_spec: Mapping[str, Any]) -> str:
    """``{"path": p, "resource_type": T}`` (or a bare path when the input allows one type)."""
    if isinstance(value, Mapping):
        path, resource_type = value.get("path"), value.get("resource_type")
    else:
        path, resource_type = value, None
    if resource_type is None:
        webmev = input_spec.get("webmev") or {}
        declared = webmev.get("resource_types") or [webmev.get("resource_type")]
        declared = [t for t in declared if t]
        if len(declared) != 1:
            raise ValueError(
                'a path_with_type value needs its resource type: {"path": …, "resource_type": …}'
            )
        resource_type = declared[0]
    return f"{path}{TYPE_DELIMITER}{resource_type}"


def converted_value(input_spec: Mapping[str, Any], value: Any) -> Any:
    """What WebMEV's converter for this input would give the template."""
    style = input_spec.get("render", "value")
    if style == "bool_int":
        return int(bool(value))
    if style == "normalized":
        ids = _element_ids(value)
        return normalize_identifier(ids[0] if ids else str(value))
    if style in ("csv", "normalized_csv", "space"):
        items = [str(item) for item in _items(value)]
        if style == "normalized_csv":
            items = [normalize_identifier(item) for item in items]
        return (" " if style == "space" else ",").join(items)
    if style == "json":
        return [
            item if isinstance(item, str | int | float) else str(item) for item in _items(value)
        ]
    if style == "path":
        return _path_of(value)
    if style == "path_with_type":
        return _with_type(value, input_spec)
    ids = _element_ids(value)
    if ids is not None and len(ids) == 1 and not isinstance(value.get("elements"), list):
        return ids[0]  # one observation/feature: its id
    return value


def value_text(value: Any) -> str:
    """How a converted value reads in the rendered command."""
    if isinstance(value, bool):
        return "True" if value else "False"  # as WebMEV's Jinja prints a Python bool
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"can't render the number {value!r}")
        return repr(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


class _Words:
    """Placeholder words for values: made of letters and digits, unique to one rendering."""

    def __init__(self, template: str) -> None:
        nonce = secrets.token_hex(8)
        while nonce in template:
            nonce = secrets.token_hex(8)
        self._prefix = f"ferry{nonce}v"
        self._pattern = re.compile(re.escape(self._prefix) + r"(\d+)x")
        self._nonce = re.compile(re.escape(nonce), re.IGNORECASE)
        self._texts: list[str] = []

    def word_for(self, text: str) -> str:
        if not text:
            return ""  # nothing to protect: the template's own quoting decides
        self._texts.append(text)
        return f"{self._prefix}{len(self._texts) - 1}x"

    def fill(self, word: str) -> str:
        """The word with its placeholders replaced by their values."""
        if self._nonce.search(self._pattern.sub("", word)):
            raise ValueError(
                "a filter or expression rewrote an input's text (only its value as a whole, "
                "its items, its truth, length and comparisons are supported)"
            )
        return self._pattern.sub(lambda m: self._texts[int(m.group(1))], word)


class _TemplateValue:
    """One input's value as the template sees it (prints as a placeholder word)."""

    def __init__(self, value: Any, words: _Words) -> None:
        self._value = value
        self._words = words

    def __str__(self) -> str:
        return self._words.word_for(value_text(self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value) if isinstance(self._value, list | str | dict) else 1

    def __iter__(self) -> Iterator[_TemplateValue]:
        items = self._value if isinstance(self._value, list) else [self._value]
        return iter([_TemplateValue(item, self._words) for item in items])

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __eq__(self, other: object) -> bool:
        other = other._value if isinstance(other, _TemplateValue) else other
        return bool(self._value == other)

    def __hash__(self) -> int:
        return hash(value_text(self._value))


def _line_of(exc: BaseException) -> int | None:
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    lines = [
        f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _where(exc: BaseException, source_name: str) -> str:
    line = _line_of(exc)
    return f"{source_name}:{line}" if line else source_name


def template_problems(
    template: str,
    input_names: Iterable[str],
    *,
    optional: Iterable[str] = (),
    source_name: str = ENTRYPOINT_NAME,
) -> list[str]:
    """What is wrong with a template: syntax errors (with their line), names that are no input,
    and what fails when it is rendered with every input given, then without the ``optional``
    ones (those with neither a value nor a default are undefined)."""
    names = set(input_names)
    given = {name: "x" for name in names}
    without_optional = {name: "x" for name in names - set(optional)}
    try:
        parsed = _ENVIRONMENT.parse(template)
        _ENVIRONMENT.compile(parsed)  # unknown filters and tests are found here
    except TemplateSyntaxError as exc:
        return [f"{source_name}:{exc.lineno}: {exc.message}"]
    out = [
        f"{source_name}: {{{{ {name} }}}} names no input (inputs: {', '.join(sorted(names))})"
        for name in sorted(meta.find_undeclared_variables(parsed) - names)
    ]
    for values in (given, without_optional):
        if out:
            break
        try:
            split_rendered(template, values, source_name=source_name)
        except TemplateProblem as exc:
            out.append(str(exc))
    return out


def split_rendered(
    template: str, values: Mapping[str, Any], *, source_name: str = ENTRYPOINT_NAME
) -> list[str]:
    """Render ``template`` over already-converted values and split it into argv words."""
    words = _Words(template)
    context = {name: _TemplateValue(value, words) for name, value in values.items()}
    try:
        text = _ENVIRONMENT.from_string(template).render(context)
    except TemplateError as exc:
        raise TemplateProblem(f"{_where(exc, source_name)}: {exc}") from exc
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise TemplateProblem(f"{_where(exc, source_name)}: {exc}") from exc
    try:
        split = shlex.split(text)
    except ValueError as exc:
        raise TemplateProblem(f"{source_name}: the rendered command can't be split: {exc}") from exc
    try:
        return [words.fill(word) for word in split]
    except ValueError as exc:
        raise TemplateProblem(f"{source_name}: {exc}") from exc


def render_argv(spec: Mapping[str, Any], values: Mapping[str, object]) -> list[str]:
    """A WebMEV-style operation's command as argv words (run without a shell).

    ``values`` maps input names to validated values (file inputs: container paths; for
    ``path_with_type``, ``{"path", "resource_type"}``; sets: ``{"elements": [{"id", …}]}``).
    Inputs left out (or ``None``) take their default; an optional input with neither is
    undefined in the template. Raises ``ValueError`` for a missing required value or an unknown
    name, :class:`TemplateProblem` (a ``ValueError``) when the template fails.
    """
    inputs: Mapping[str, Any] = spec.get("inputs") or {}
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ValueError(f"no such inputs: {', '.join(unknown)}")
    command = spec.get("command")
    if not isinstance(command, str):
        raise ValueError("the spec has no command to render")
    converted: dict[str, Any] = {}
    for name, input_spec in inputs.items():
        value = values.get(name)
        if value is None:
            value = input_spec.get("default")
        if value is None:
            if input_spec.get("required", True):
                raise ValueError(f"the required input {name!r} has no value")
            continue
        converted[name] = converted_value(input_spec, value)
    return split_rendered(command, converted)
