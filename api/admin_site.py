"""The admin site, with its sign-in form under the same limits as POST /api/auth/token/ and
its password change (which checks the old password) under those of POST /api/auth/password/."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from .views.accounts import password_change_form_throttled, sign_in_form_throttled


class FerryAdminSite(admin.AdminSite):
    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return cast(HttpResponse, sign_in_form_throttled(super().login)(request, extra_context))

    def password_change(  # type: ignore[override]  # (a refusal is a JSON 429, no template)
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        guarded = password_change_form_throttled(super().password_change)
        return cast(HttpResponse, guarded(request, extra_context))
