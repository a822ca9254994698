"""Writes to element sets: create, update, delete and combine, with the workspace role checked.

Values are checked by :mod:`.values`; every problem becomes a 400 whose details name its path
(``elements[3].id``)."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.db import IntegrityError, transaction

from ..exceptions import ApplicationError, Conflict, Forbidden, field_error
from ..models import WRITE_ROLES, ElementKind, ElementSet, User, Workspace
from ..selectors import role_in
from . import values

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000
SET_OPERATIONS = ("union", "intersection", "difference")


def invalid_value(problems: list[values.Problem], *, prefix: str = "") -> ApplicationError:
    """One 400 listing each problem under its path (``prefix`` names where the value sits)."""
    details: dict[str, list[str]] = {}
    for path, message in problems:
        full = f"{prefix}.{path}" if prefix and path and not path.startswith("[") else prefix + path
        details.setdefault(full or "body", []).append(message)
    first_path, first = next(iter(details.items()))
    more = len(problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ApplicationError(f"{first_path}: {first[0]}{suffix}", details=details)


def _require_write(user: User, workspace: Workspace) -> None:
    role = role_in(user, workspace)
    if role is None:
        raise field_error("workspace", "No such workspace.", code="does_not_exist")
    if role not in WRITE_ROLES:
        raise Forbidden(
            "Viewers cannot add or change sets in this workspace.",
            details={"workspace": ["Your role in this workspace is viewer."]},
        )


def clean_set_name(raw: Any) -> str:
    name = unicodedata.normalize("NFC", raw if isinstance(raw, str) else "").strip()
    if not name:
        raise field_error("name", "A set needs a name.", code="blank")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in name):
        raise field_error("name", "The name contains control or invisible characters.")
    if len(name) > NAME_MAX_LENGTH:
        raise field_error("name", f"The name is longer than {NAME_MAX_LENGTH} characters.")
    return name


def _clean_description(raw: Any) -> str:
    text = raw if isinstance(raw, str) else ""
    if len(text) > DESCRIPTION_MAX_LENGTH:
        raise field_error(
            "description", f"The description is longer than {DESCRIPTION_MAX_LENGTH} characters."
        )
    if "\x00" in text:
        raise field_error("description", "The description must not contain NUL characters.")
    return text


def _clean_elements(raw: Any) -> list[dict[str, Any]]:
    elements, problems = values.checked_elements(raw, path="elements")
    if problems:
        raise invalid_value(problems)
    return elements


def _save(element_set: ElementSet, *, create: bool) -> ElementSet:
    try:
        with transaction.atomic():
            if create:
                element_set.save(force_insert=True)
            else:
                element_set.save()
    except IntegrityError:
        raise Conflict(
            f"The workspace already has a {element_set.kind} set named {element_set.name!r}.",
            code="duplicate_name",
            details={"name": ["Already used by another set of this kind in this workspace."]},
        ) from None
    return element_set


def element_set_create(
    *,
    user: User,
    workspace: Workspace,
    kind: str,
    name: Any,
    elements: Any,
    description: Any = "",
) -> ElementSet:
    _require_write(user, workspace)
    if kind not in ElementKind.values:
        raise field_error("kind", f"Must be one of {', '.join(ElementKind.values)}.")
    checked = _clean_elements(elements)
    return _save(
        ElementSet(
            workspace=workspace,
            kind=kind,
            name=clean_set_name(name),
            description=_clean_description(description),
            elements=checked,
            element_count=len(checked),
            created_by=user,
        ),
        create=True,
    )


def element_set_update(
    *,
    user: User,
    element_set: ElementSet,
    name: Any = None,
    description: Any = None,
    elements: Any = None,
) -> ElementSet:
    """Change what is given (``None``: keep); the kind and workspace of a set stay."""
    _require_write(user, element_set.workspace)
    if name is not None:
        element_set.name = clean_set_name(name)
    if description is not None:
        element_set.description = _clean_description(description)
    if elements is not None:
        element_set.elements = _clean_elements(elements)
        element_set.element_count = len(element_set.elements)
    return _save(element_set, create=False)


def element_set_delete(*, user: User, element_set: ElementSet) -> None:
    _require_write(user, element_set.workspace)
    element_set.delete()


def element_set_combine(
    *,
    user: User,
    left: ElementSet,
    right: ElementSet,
    operation: str,
    name: Any,
    description: Any = "",
) -> ElementSet:
    """A new set in ``left``'s workspace: the union, intersection or difference of two sets of
    the same kind (``right`` may be in another workspace the user can read)."""
    if operation not in SET_OPERATIONS:
        raise field_error("operation", f"Must be one of {', '.join(SET_OPERATIONS)}.")
    if right.kind != left.kind:
        raise field_error(
            "other",
            f"The sets are of different kinds ({left.kind}, {right.kind}); "
            "only sets of one kind combine.",
        )
    combined, conflicts = values.set_algebra(operation, list(left.elements), list(right.elements))
    if conflicts:
        shown = ", ".join(conflicts[:10]) + (" …" if len(conflicts) > 10 else "")
        raise Conflict(
            f"The sets give different values to {len(conflicts)} attribute(s) of shared "
            f"elements ({shown}); make them agree first.",
            code="conflicting_attributes",
            details={"other": [f"Attributes that differ: {shown}."]},
        )
    if len(combined) > values.MAX_ELEMENTS:
        raise field_error(
            "other", f"The result would hold more than {values.MAX_ELEMENTS} elements."
        )
    return element_set_create(
        user=user,
        workspace=left.workspace,
        kind=left.kind,
        name=name,
        elements=combined,
        description=description,
    )
