"""OpenAPI: every operation documents the error responses it can give, in the one error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class ErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="A stable machine-readable code, e.g. `invalid`, `not_found`."
    )
    message = serializers.CharField(
        help_text="A sentence for people: what is wrong and what to do."
    )
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field, header or query parameter at fault (`a.b[0].c` for nested ones).",
    )


_DESCRIPTIONS = {
    "400": "Bad input; `details` names each field, header or parameter at fault.",
    "401": "Not signed in (session, JWT `Bearer` or API `Token`).",
    "403": "Signed in, but your role does not allow this.",
    "404": "No such resource, or not one you can see.",
    "409": "Conflicts with the current state (e.g. duplicate member, last owner, active jobs).",
    "422": "The Idempotency-Key was used for another request (method, path, query or body).",
}


class FerryAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        codes = []
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        # Lists refuse a bad cursor, page_size or ordering; filters refuse bad values.
        if writes or self._has_query_filters() or self._is_list_view():
            codes.append("400")
        public = any(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())
        if not public:
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if writes:
            codes.append("409")
        if any(getattr(p, "name", "") == "Idempotency-Key" for p in self.get_override_parameters()):
            codes.append("422")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]),
                    code,
                    direction=direction,
                )
        return responses

    def _has_query_filters(self) -> bool:
        return bool(
            getattr(self.view, "filterset_class", None)
            or getattr(self.view, "filterset_fields", None)
        )


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A personal API token: `Token fry_…` (from /api/auth/api-tokens/).",
        }
