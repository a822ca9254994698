"""Accounts over HTTP: sign-in with rate limits (JWT obtain/refresh and the session sign-in
form), the signed-in user, password change, registration and API tokens."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NoReturn

from django.contrib.auth import update_session_auth_hash
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views

from .. import services
from ..exception_handlers import error_body
from ..models import ApiToken
from ..schema import ErrorSerializer
from ..selectors import api_tokens_of, usable_api_tokens
from ..serializers.accounts import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    PasswordChangeSerializer,
    RegisterSerializer,
    UserSerializer,
)
from ..throttles import (
    PASSWORD_CHANGE_THROTTLES,
    REGISTRATION_THROTTLES,
    SIGN_IN_FORM_THROTTLES,
    SIGN_IN_THROTTLES,
    TOKEN_REFRESH_THROTTLES,
    FerryRateThrottle,
    ThrottledAuthView,
    first_refusal,
    throttled_error,
)
from .common import UUID_REGEX, current_user
from .conditional import ConditionalRequestsMixin


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


def form_throttled(
    view: Callable[..., HttpResponseBase],
    throttles: list[type[FerryRateThrottle]],
    what: str,
) -> Callable[..., HttpResponseBase]:
    """Put a session form's POST (a plain Django view) under ``throttles``; a refusal is the
    API's 429 naming ``what`` was limited."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            wait = first_refusal(throttles, request)
            if wait is not None:
                exc = throttled_error(what, wait)
                response = JsonResponse(
                    error_body("throttled", str(exc.detail)), status=exc.status_code
                )
                response["Retry-After"] = str(math.ceil(wait))
                return response
        return view(request, *args, **kwargs)

    return guarded


def sign_in_form_throttled(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Put a session sign-in form (browsable API, admin) under the sign-in limits."""
    return form_throttled(view, SIGN_IN_FORM_THROTTLES, "sign-in attempts")


def password_change_form_throttled(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Put a session password-change form (the admin's, which checks the old password) under
    the same limits as POST /api/auth/password/."""
    return form_throttled(view, PASSWORD_CHANGE_THROTTLES, "password changes")


class MeView(ConditionalRequestsMixin, generics.RetrieveUpdateAPIView[Any]):
    """The signed-in user."""

    serializer_class = UserSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> Any:
        return current_user(self.request)


class PasswordChangeView(ThrottledAuthView):
    """Change your password. Every other session and every JWT issued before end; personal API
    tokens stay valid (they are separate credentials, revoked at /api/auth/api-tokens/)."""

    throttle_classes = PASSWORD_CHANGE_THROTTLES
    throttled_what = "password changes"

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={
            200: inline_serializer(
                "PasswordChanged",
                {"message": serializers.CharField(), "api_tokens_kept": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = current_user(request)
        services.user_change_password(user=user, **data.validated_data)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request, user)  # this session stays signed in
        kept = usable_api_tokens(user).count()
        return Response(
            {
                "message": (
                    "Password changed. Your other sessions and every access and refresh token "
                    "issued before now are revoked: sign in again with the new password. "
                    f"Your {kept} personal API token(s) remain valid; revoke any that may be "
                    "exposed at /api/auth/api-tokens/."
                ),
                "api_tokens_kept": kept,
            }
        )


class RegisterView(ThrottledAuthView):
    """Self-service sign-up; answers 403 unless FERRY_REGISTRATION_OPEN is on."""

    permission_classes = [AllowAny]
    throttle_classes = REGISTRATION_THROTTLES
    throttled_what = "registrations"

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: UserSerializer,
            403: OpenApiResponse(
                ErrorSerializer, description="Registration is closed (FERRY_REGISTRATION_OPEN)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class ApiTokenViewSet(
    ConditionalRequestsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiToken],
):
    """Personal API tokens of the signed-in user. DELETE revokes a token."""

    lookup_value_regex = UUID_REGEX
    serializer_class = ApiTokenSerializer
    filterset_fields: list[str] = []

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return api_tokens_of(current_user(self.request))

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ApiTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=current_user(request), **data.validated_data)
        body = ApiTokenCreatedSerializer(token).data
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(token=instance)


# ----------------------------------------------------------------------------------- workspaces
