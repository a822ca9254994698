"""Building model instances from database rows at list speed.

``Model.from_db`` (what every queryset, ``select_related`` and ``prefetch_related`` call per
row) builds each instance through ``Model.__init__``: two signal sends and a ``setattr`` per
column, through the field's descriptor. On a 500-job page (800 instances with the operations,
owners and output files) that was a quarter of the request. ``DirectFromDb`` is Django's
documented way to change it (overriding the ``from_db`` classmethod): the instance gets the
same ``_state`` and the same ``__dict__`` that ``Model.__init__`` gives it, written directly.

It does so only when that is the same thing: when no ``pre_init``/``post_init`` receiver
listens to the model, its ``__init__`` is Django's, and every column's attribute is Django's
plain one (a ``DeferredAttribute``, or a foreign key's id, whose setter only drops a cached
related object a new instance can't have yet). Otherwise (or for a model that isn't so) it is
Django's own ``from_db``.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any, Self

from django.db import models
from django.db.models import signals
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute

_PLAIN_ATTRIBUTES = (DeferredAttribute, ForeignKeyDeferredAttribute)


class _Plan:
    """What a model's rows are written into: its columns' attribute names, in order, and
    those of each subset a deferring query loads."""

    __slots__ = ("attnames", "direct", "subsets")

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        self.attnames: tuple[str, ...] = tuple(f.attname for f in fields)
        self.direct = model.__init__ is models.Model.__init__ and all(
            type(inspect.getattr_static(model, name, None)) in _PLAIN_ATTRIBUTES
            for name in self.attnames
        )
        self.subsets: dict[tuple[str, ...], tuple[str, ...]] = {}

    def loaded(self, field_names: Collection[str]) -> tuple[str, ...]:
        """The attributes a row of ``len(field_names)`` values fills, in the order Django's
        ``from_db`` fills them (the model's column order)."""
        key = tuple(field_names)
        names = self.subsets.get(key)
        if names is None:
            names = self.subsets[key] = tuple(a for a in self.attnames if a in key)
        return names


class DirectFromDb:
    """Put before ``models.Model``: rows become instances without ``Model.__init__``."""

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **more: Any
    ) -> Self:
        model: Any = cls
        plan = model.__dict__.get("_direct_from_db_plan")
        if plan is None:
            plan = _Plan(model)
            model._direct_from_db_plan = plan
        if (
            more  # (keywords of a later Django's: its own way)
            or not plan.direct
            # (a receiver list empty for every model first: the common case, without a lookup)
            or (signals.pre_init.receivers and signals.pre_init.has_listeners(model))
            or (signals.post_init.receivers and signals.post_init.has_listeners(model))
        ):
            return super().from_db(db, field_names, values, **more)  # type: ignore[misc]
        names = plan.attnames if len(values) == len(plan.attnames) else plan.loaded(field_names)
        instance = model.__new__(model)
        state = instance._state = ModelState()
        state.adding = False
        state.db = db
        instance.__dict__.update(zip(names, values, strict=True))
        return instance
