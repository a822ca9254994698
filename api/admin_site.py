"""The admin site, with its sign-in form under the same limits as POST /api/auth/token/."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from .views.accounts import sign_in_form_throttled


class FerryAdminSite(admin.AdminSite):
    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return cast(HttpResponse, sign_in_form_throttled(super().login)(request, extra_context))
