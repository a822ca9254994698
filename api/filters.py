from typing import Any

import django_filters
from django.db.models import QuerySet

from .models import File, FileStatus, FileType, Workspace
from .selectors import workspaces_visible_to


class WorkspaceFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Workspace
        fields = ["name"]


def _visible_workspaces(request: Any) -> QuerySet[Workspace]:
    if request is None:
        return Workspace.objects.none()
    return workspaces_visible_to(request.user)


class FileFilter(django_filters.FilterSet):
    # Only workspaces the user can see are valid choices, so an unknown and a hidden
    # workspace answer alike (existence is not leaked).
    workspace = django_filters.ModelChoiceFilter(queryset=_visible_workspaces)
    name = django_filters.CharFilter(lookup_expr="icontains")
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)
    file_type = django_filters.ChoiceFilter(choices=FileType.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = File
        fields = ["workspace", "name", "status", "file_type"]
