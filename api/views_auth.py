"""Sign-in endpoints with rate limits: JWT obtain/refresh and the session sign-in form."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NoReturn

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from rest_framework_simplejwt import views as jwt_views

from .exception_handlers import error_body
from .throttles import (
    SIGN_IN_FORM_THROTTLES,
    SIGN_IN_THROTTLES,
    TOKEN_REFRESH_THROTTLES,
    first_refusal,
    throttled_error,
)


class SignInTokenView(jwt_views.TokenObtainPairView):
    """Exchange email and password for an access and a refresh token."""

    throttle_classes = SIGN_IN_THROTTLES

    def throttled(self, request: Any, wait: float | None) -> NoReturn:
        raise throttled_error("sign-in attempts", wait)


class TokenRefreshView(jwt_views.TokenRefreshView):
    """A new access token for a refresh token issued since the last password change."""

    throttle_classes = TOKEN_REFRESH_THROTTLES

    def throttled(self, request: Any, wait: float | None) -> NoReturn:
        raise throttled_error("token refreshes", wait)


def sign_in_form_throttled(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Put a session sign-in form (browsable API, admin) under the sign-in limits."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            wait = first_refusal(SIGN_IN_FORM_THROTTLES, request)
            if wait is not None:
                exc = throttled_error("sign-in attempts", wait)
                response = JsonResponse(
                    error_body("throttled", str(exc.detail)), status=exc.status_code
                )
                response["Retry-After"] = str(math.ceil(wait))
                return response
        return view(request, *args, **kwargs)

    return guarded
