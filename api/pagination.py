"""Cursor pagination on every list; a bad ``page_size`` or ``cursor`` is a 400 naming it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from .exceptions import field_error


class CreatedCursorPagination(CursorPagination):
    """Cursor pagination on every list, newest first unless ``ordering`` says otherwise.
    ``page_size`` above ``max_page_size`` is capped; one that isn't a positive whole number,
    and a cursor that isn't one Ferry handed out, are refused."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """DRF's, with examples that are URLs (its ``next`` example ends in a stray quote)."""
        answer: dict[str, Any] = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            answer["properties"][link]["example"] = (
                f"https://ferry.example.org/api/files/?{self.cursor_query_param}=cD0yMDI2"
            )
        return answer

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size  # type: ignore[return-value]
        if not raw.isdigit() or not raw.isascii() or int(raw) < 1:
            raise field_error(
                self.page_size_query_param,
                f"Must be a whole number from 1 (larger ones count as {self.max_page_size}).",
            )
        return min(int(raw), self.max_page_size)

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise self._bad_cursor() from exc
        except (ValueError, TypeError, DjangoValidationError) as exc:
            # A forged cursor's position that doesn't fit the ordering field's type.
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise self._bad_cursor() from exc

    def _bad_cursor(self) -> Exception:
        return field_error(
            self.cursor_query_param,
            "Not a cursor from this list: follow the next and previous links as they are.",
        )
