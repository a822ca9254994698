"""How answers are rendered: JSON through orjson, and the browsable API as Ferry shows it (its
own branding, and real forms to upload a file and start a job: a view names the serializer
that renders each action's form)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_LINE_SEPARATORS = ("\u2028".encode(), b"\\u2028")
_PARAGRAPH_SEPARATORS = ("\u2029".encode(), b"\\u2029")
_encoder = JSONEncoder()


def _what_orjson_lacks(value: Any) -> Any:
    """What DRF's encoder makes of types orjson doesn't know (lazy strings, Decimal, …)."""
    return _encoder.default(value)


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON, rendered by orjson (a 50-job page in a tenth of the time): compact, UTF-8,
    datetimes with "Z" for UTC, U+2028/U+2029 escaped, the same keys in the same order.
    Differences in bytes only, not in values: a float's exponent is written without "+" or a
    leading zero (1e16, not 1e+16), and NaN/Infinity become null (DRF's strict JSON refused
    them with an error). An indented answer (``application/json; indent=4``, the browsable
    API) and integers beyond 64 bits are left to DRF's renderer."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_what_orjson_lacks, option=_ORJSON_OPTIONS)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in (_LINE_SEPARATORS, _PARAGRAPH_SEPARATORS):
            if raw in body:
                body = body.replace(raw, escaped)
        return body


@contextlib.contextmanager
def _rendering_forms(view: Any) -> Iterator[None]:
    view.rendering_form = True
    try:
        yield
    finally:
        view.rendering_form = False


class FerryBrowsableAPIRenderer(BrowsableAPIRenderer):
    template = "api/browsable_api.html"

    def get_rendered_html_form(self, data: Any, view: Any, method: str, request: Any) -> Any:
        with _rendering_forms(view):
            return super().get_rendered_html_form(data, view, method, request)

    def get_raw_data_form(self, data: Any, view: Any, method: str, request: Any) -> Any:
        with _rendering_forms(view):
            return super().get_raw_data_form(data, view, method, request)


class BrowsableFormsMixin:
    """Renders the browsable API's form for an action with ``form_serializer_classes[action]``
    (choices limited to what the user may use), while requests are still checked by the
    action's own serializer."""

    form_serializer_classes: dict[str, type[Any]] = {}
    rendering_form = False

    def get_serializer_class(self) -> Any:
        action = getattr(self, "action", None)
        if self.rendering_form and action in self.form_serializer_classes:
            return self.form_serializer_classes[action]
        return super().get_serializer_class()  # type: ignore[misc]
