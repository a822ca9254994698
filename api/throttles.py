"""Rate limits on sign-in, token refresh, password change and registration.

Each guarded endpoint counts requests twice: per account (the email submitted, normalized, or the
signed-in user) and per client address. Counters live in the default cache, which must be shared
by every web worker (settings.CACHES: a database table unless CACHE_URL says otherwise). Rates come
from ``settings.FERRY_THROTTLE_RATES`` at request time, keyed by scope; a missing or empty rate
turns that limit off.
"""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpRequest, QueryDict
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class FerryRateThrottle(SimpleRateThrottle):
    """A cache-backed rate whose value is read from settings on every request."""

    def __init__(self) -> None:  # the rate is read in allow_request, not at construction
        self.rate = None

    def get_rate(self) -> str | None:
        rates: dict[str, str | None] = getattr(settings, "FERRY_THROTTLE_RATES", {})
        return rates.get(self.scope or "") or None

    def allow_request(self, request: Any, view: Any) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def ident_for(self, request: Any) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        ident = self.ident_for(request)
        if not ident:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressThrottle(FerryRateThrottle):
    """Per client address (REMOTE_ADDR, or X-Forwarded-For behind REST_FRAMEWORK NUM_PROXIES)."""

    def ident_for(self, request: Any) -> str | None:
        return str(self.get_ident(request) or "unknown")


def _submitted(request: Any, field: str) -> str:
    data = getattr(request, "data", None)
    if data is None:  # a plain Django request (the session sign-in form)
        data = request.POST if isinstance(request, HttpRequest) else QueryDict()
    value = data.get(field) if hasattr(data, "get") else None
    return value.strip().lower() if isinstance(value, str) else ""


class SubmittedAccountThrottle(FerryRateThrottle):
    """Per account named in the request body (normalized as accounts are stored), read from the
    one field the endpoint authenticates with, so an extra field can't change the counter."""

    account_field = "email"

    def ident_for(self, request: Any) -> str | None:
        account = _submitted(request, self.account_field)
        return hashlib.sha256(account.encode()).hexdigest()[:32] if account else None


class SubmittedUsernameThrottle(SubmittedAccountThrottle):
    """The session sign-in forms name the account (an email) in "username"."""

    account_field = "username"


class SignedInAccountThrottle(FerryRateThrottle):
    """Per signed-in user."""

    def ident_for(self, request: Any) -> str | None:
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else None


class RefreshTokenAccountThrottle(FerryRateThrottle):
    """Per user a (validly signed) refresh token belongs to; forged tokens count per address."""

    def ident_for(self, request: Any) -> str | None:
        from rest_framework_simplejwt.exceptions import TokenError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.tokens import RefreshToken

        raw = getattr(request, "data", {}).get("refresh") if hasattr(request, "data") else None
        if not isinstance(raw, str) or not raw:
            return None
        try:
            token = RefreshToken(raw)  # type: ignore[arg-type]
        except TokenError:
            return None
        user_id = token.payload.get(api_settings.USER_ID_CLAIM)
        return str(user_id) if user_id else None


def _throttle(scope_name: str, base: type[FerryRateThrottle]) -> type[FerryRateThrottle]:
    return type(f"{base.__name__}_{scope_name}", (base,), {"scope": scope_name})


SIGN_IN_THROTTLES = [
    _throttle("sign-in-account", SubmittedAccountThrottle),
    _throttle("sign-in-address", AddressThrottle),
]
# The same counters (same scopes) for the session sign-in forms.
SIGN_IN_FORM_THROTTLES = [
    _throttle("sign-in-account", SubmittedUsernameThrottle),
    _throttle("sign-in-address", AddressThrottle),
]
TOKEN_REFRESH_THROTTLES = [
    _throttle("token-refresh-account", RefreshTokenAccountThrottle),
    _throttle("token-refresh-address", AddressThrottle),
]
PASSWORD_CHANGE_THROTTLES = [
    _throttle("password-change-account", SignedInAccountThrottle),
    _throttle("password-change-address", AddressThrottle),
]
REGISTRATION_THROTTLES = [
    _throttle("register-account", SubmittedAccountThrottle),
    _throttle("register-address", AddressThrottle),
]


def throttled_error(what: str, wait: float | None) -> Throttled:
    """A 429 naming what was limited; the handler adds Retry-After from ``wait``."""
    return Throttled(
        wait=wait,
        detail=f"Too many {what} for this account or from this address.",
    )


class ThrottledAuthView(APIView):
    """An auth endpoint guarded by ``throttle_classes``; a 429 says which action was limited."""

    throttled_what = "requests"

    def throttled(self, request: Any, wait: float | None) -> NoReturn:
        raise throttled_error(self.throttled_what, wait)


def first_refusal(
    throttle_classes: list[type[FerryRateThrottle]], request: HttpRequest
) -> float | None:
    """For plain Django views: None if every throttle allows the request, else seconds to wait."""
    waits = []
    for throttle_class in throttle_classes:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None
