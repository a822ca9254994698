from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from rest_framework.filters import OrderingFilter

from .exceptions import field_error
from .models import ElementKind, ElementSet, File, FileStatus, FileType, Workspace
from .selectors import workspaces_visible_to


class WorkspaceFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Workspace
        fields = ["name"]


def visible_workspaces(request: Any) -> QuerySet[Workspace]:
    if request is None:
        return Workspace.objects.none()
    return workspaces_visible_to(request.user)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, in UTC before it reaches the database: ISO 8601 allows offsets
    (such as -20:45) that Postgres refuses."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range once in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class FileFilter(django_filters.FilterSet):
    # Only workspaces the user can see are valid choices, so an unknown and a hidden
    # workspace answer alike (existence is not leaked).
    workspace = django_filters.ModelChoiceFilter(queryset=visible_workspaces)
    name = django_filters.CharFilter(lookup_expr="icontains")
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)
    file_type = django_filters.ChoiceFilter(choices=FileType.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = File
        fields = ["workspace", "name", "status", "file_type"]


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=`` with only the fields a list documents; any other term is a 400 naming
    ``ordering`` (DRF's filter drops unknown terms silently)."""

    def remove_invalid_fields(
        self, queryset: QuerySet[Any], fields: Iterable[str], view: Any, request: Any
    ) -> list[str]:
        valid = {item[0] for item in self.get_valid_fields(queryset, view, {"request": request})}
        fields = list(fields)
        unknown = [term for term in fields if term.removeprefix("-") not in valid]
        if unknown:
            choices = ", ".join(sorted(valid)) or "none"
            raise field_error(
                self.ordering_param,
                f"Can't order by {', '.join(unknown)}; choose from {choices} (- for descending).",
            )
        return fields


class ElementSetFilter(django_filters.FilterSet):
    workspace = django_filters.ModelChoiceFilter(queryset=visible_workspaces)
    kind = django_filters.ChoiceFilter(choices=ElementKind.choices)
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ElementSet
        fields = ["workspace", "kind", "name"]
