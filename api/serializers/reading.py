"""Reading rows for an answer at list speed: the same dict as DRF's ``to_representation``,
without its per-value machinery.

DRF reads each field of each row through ``get_attribute`` (a walk over ``source_attrs`` with a
try/except and a callable check per step) and converts it with the field's
``to_representation`` (a datetime looks up the current time zone every time). On a 50-job page
with its output files that was most of the request. ``FastReadMixin`` plans each readable field
once per serializer instance (a list reuses its child for every row): a direct attribute getter
and the conversion the field's type does, with DRF's own field methods for anything it doesn't
know and whenever a getter meets something unusual (a missing related object, a callable) —
so the answer is the same dict, value for value, key for key, in the same order.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone
from rest_framework import fields, relations, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

Getter = Callable[[Any], Any]
Converter = Callable[[Any], Any]

_MISSING = object()  # the getter met something only DRF's own get_attribute handles


def _iso_datetime(tz: Any) -> Converter:
    """DateTimeField's ISO 8601 form in ``tz`` ('Z' for UTC), for aware datetimes."""

    def convert(value: Any) -> Any:
        # (timezone.is_naive, without its call)
        if isinstance(value, str) or value.utcoffset() is None:
            return _SLOW
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


_SLOW = object()  # the converter leaves this value to the field's own to_representation


def _identity(value: Any) -> Any:
    return value


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else _SLOW


def _converter(field: fields.Field[Any, Any, Any, Any], tz: Any) -> Converter | None:
    """A faster equivalent of ``field.to_representation`` for the common field types (None:
    use the field's own)."""
    if isinstance(field, fields.DateTimeField):
        output = getattr(field, "format", api_settings.DATETIME_FORMAT)
        timezone_of_field = getattr(field, "timezone", tz)
        if (
            isinstance(output, str)
            and output.lower() == api_settings.DATETIME_FORMAT.lower() == "iso-8601"
            and timezone_of_field is not None
        ):
            return _iso_datetime(timezone_of_field)
        return None
    if isinstance(field, fields.UUIDField):
        return str if field.uuid_format == "hex_verbose" else None
    if isinstance(field, fields.ChoiceField):
        return None  # (its choices map the value)
    if isinstance(field, fields.CharField):  # also EmailField, RegexField, URLField, SlugField
        return str
    if isinstance(field, fields.IntegerField):
        return int
    if isinstance(field, fields.BooleanField):
        return _boolean
    if isinstance(field, fields.JSONField) and not field.binary:
        return _identity
    return None


def _getter(field: fields.Field[Any, Any, Any, Any], model: type[models.Model]) -> Getter | None:
    """A direct getter of the field's attribute (None: use the field's own get_attribute)."""
    source = field.source or ""
    if source == "*" or not field.source_attrs:
        return None
    if isinstance(field, relations.PrimaryKeyRelatedField):
        if field.pk_field is not None or len(field.source_attrs) != 1:
            return None
        try:
            model_field = model._meta.get_field(field.source_attrs[0])
        except Exception:
            return None
        if not isinstance(model_field, models.ForeignKey):
            return None
        return operator.attrgetter(model_field.attname)  # (the pk, as PKOnlyObject holds it)
    if isinstance(field, relations.RelatedField):
        return None
    return operator.attrgetter(source)


class _FieldPlan:
    __slots__ = ("convert", "field", "get", "method", "name")

    def __init__(
        self,
        field: fields.Field[Any, Any, Any, Any],
        get: Getter | None,
        convert: Converter | None,
        method: Callable[[Any], Any] | None,
    ) -> None:
        self.field = field
        self.name: str = field.field_name or ""
        self.get = get
        self.convert = convert
        self.method = method

    def slow(self, instance: Any) -> Any:
        """DRF's own reading of the field (``_MISSING``: the field is skipped)."""
        try:
            attribute = self.field.get_attribute(instance)
        except SkipField:
            return _MISSING
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check is None else self.field.to_representation(attribute)


def _no_getter(instance: Any) -> Any:
    raise AttributeError  # (DRF's own reading, always)


# A field's plan as the read loop takes it: (name, method, get, convert, plan).
_Step = tuple[str, Callable[[Any], Any] | None, Getter, Converter, _FieldPlan]


def _step(plan: _FieldPlan) -> _Step:
    """``plan`` for the loop: a getter that raises where DRF's own reading is needed, and the
    field's own ``to_representation`` where no faster conversion is known."""
    get = plan.get if plan.get is not None else _no_getter
    convert = plan.convert if plan.convert is not None else plan.field.to_representation
    return (plan.name, plan.method, get, convert, plan)


def _read(steps: tuple[_Step, ...], instance: Any) -> dict[str, Any]:
    """The dict DRF's ``to_representation`` gives of ``instance``: each field through its
    method, else its getter and converter, else DRF's own reading (a missing related object,
    a callable value); a value the converter leaves (``_SLOW``) goes to the field's own
    ``to_representation``. One loop, with no call per field but the getter and the converter
    (a list reads thousands of fields)."""
    answer: dict[str, Any] = {}
    for name, method, get, convert, step in steps:
        if method is not None:
            answer[name] = method(instance)
            continue
        try:
            value = get(instance)
        except (AttributeError, KeyError, ObjectDoesNotExist):
            pass
        else:
            if value is None:
                answer[name] = None
                continue
            if not callable(value):
                converted = convert(value)
                answer[name] = (
                    converted if converted is not _SLOW else step.field.to_representation(value)
                )
                continue
        value = step.slow(instance)
        if value is not _MISSING:
            answer[name] = value
    return answer


class FastReadMixin:
    """Put before ``ModelSerializer``: ``to_representation`` through a per-instance plan, and
    its fields built from the model once per serializer class.

    ``ModelSerializer.get_fields`` works out every field from the model on every serializer
    instance (a list builds two per request: a sixth of a 50-job page went there). What it
    answers depends on the class only (its Meta, its declared fields, the model), so the
    first answer is kept and each instance gets a deep copy of it, which is how DRF gives
    each instance its declared fields: each field made again from its constructor's
    arguments, unbound."""

    _read_plan: tuple[_Step, ...] | None = None

    def get_fields(self) -> dict[str, Any]:
        serializer_class: Any = type(self)
        built = serializer_class.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()  # type: ignore[misc]
            serializer_class._fields_built = built
        return copy.deepcopy(built)

    def _plan(self) -> tuple[_Step, ...]:
        serializer: Any = self
        model = serializer.Meta.model
        tz = timezone.get_current_timezone()
        plan = []
        for field in serializer._readable_fields:
            if isinstance(field, serializers.SerializerMethodField):
                method = getattr(serializer, field.method_name)
                plan.append(_FieldPlan(field, None, None, method))
                continue
            get = _getter(field, model)
            if isinstance(field, relations.PrimaryKeyRelatedField):
                # Its getter reads the pk itself, which is what the field answers.
                plan.append(_FieldPlan(field, get, _identity if get else None, None))
            else:
                plan.append(_FieldPlan(field, get, _converter(field, tz), None))
        return tuple(_step(p) for p in plan)

    def to_representation(self, instance: Any) -> Any:
        plan = self._read_plan
        if plan is None:
            plan = self._read_plan = self._plan()
        return _read(plan, instance)
