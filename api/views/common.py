"""What the HTTP modules share: the signed-in user and the id pattern of routes."""

from __future__ import annotations

from typing import cast

from rest_framework.request import Request

from ..models import User


def current_user(request: Request) -> User:
    """The signed-in user (every view that calls this requires authentication)."""
    return cast(User, request.user)


UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
