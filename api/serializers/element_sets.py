"""Element sets (observations/features of a workspace): what the API shows and accepts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..element_sets.services import SET_OPERATIONS
from ..element_sets.values import ATTRIBUTE_TYPES, ID_MAX_LENGTH, MAX_ATTRIBUTES, MAX_ELEMENTS
from ..models import ElementKind, ElementSet

ELEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An observation or feature: its id and typed attributes (WebMEV's shape).",
    "properties": {
        "id": {
            "type": "string",
            "maxLength": ID_MAX_LENGTH,
            "description": "Letters, digits and : _ . - (spaces become _).",
        },
        "attributes": {
            "type": "object",
            "maxProperties": MAX_ATTRIBUTES,
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "attribute_type": {"type": "string", "enum": list(ATTRIBUTE_TYPES)},
                    "value": {},
                },
                "required": ["attribute_type", "value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["id"],
    "additionalProperties": False,
}
ELEMENTS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_ELEMENTS,
    "items": ELEMENT_SCHEMA,
    "description": f"At most {MAX_ELEMENTS} elements, ids unique.",
}


@extend_schema_field(ELEMENTS_SCHEMA)
class ElementsField(serializers.JSONField):
    """The elements as given; :mod:`api.element_sets.values` checks them in the service."""


class ElementSetSummarySerializer(serializers.ModelSerializer[ElementSet]):
    """A set in a list: everything but its elements."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True)

    class Meta:
        model = ElementSet
        fields = [
            "id",
            "workspace",
            "kind",
            "name",
            "description",
            "element_count",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ElementSetSerializer(ElementSetSummarySerializer):
    elements = ElementsField(read_only=True)

    class Meta(ElementSetSummarySerializer.Meta):
        fields = [*ElementSetSummarySerializer.Meta.fields, "elements"]
        read_only_fields = fields


class ElementSetCreateSerializer(serializers.Serializer[Any]):
    workspace = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ElementKind.choices)
    name = serializers.CharField(max_length=200, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    elements = ElementsField()


class ElementSetUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, max_length=200, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    elements = ElementsField(required=False, help_text="Replaces every element.")


class ElementSetCombineSerializer(serializers.Serializer[Any]):
    operation = serializers.ChoiceField(choices=SET_OPERATIONS)
    other = serializers.UUIDField(help_text="The other set (of the same kind).")
    name = serializers.CharField(max_length=200, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
