"""Personal API tokens: ``Authorization: Token fry_…`` (``Bearer fry_…`` is accepted too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken
from .tokens import TOKEN_PREFIX, hash_token

_LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        key = header[1].decode(errors="replace")
        if header[0].lower() == b"bearer" and not key.startswith(TOKEN_PREFIX):
            return None  # a JWT: leave it to the JWT authentication class
        # (key_hash is unique: its row, without an ORDER BY to compile and run on every request)
        tokens = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key))
        found = list(tokens.order_by()[:1])
        token = found[0] if found else None
        if token is None or not token.is_usable or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ferry"'
