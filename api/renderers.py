"""The browsable API as Ferry shows it: its own branding, and real forms to upload a file and
start a job (a view names the serializer that renders each action's form)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rest_framework.renderers import BrowsableAPIRenderer


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
