"""What the serializers share."""

from __future__ import annotations

from typing import Any


class StaffOnlyFieldsMixin:
    """Fields only staff see (blank for everyone else): where objects are stored, where code
    came from and how it was built are the site's business, and a URI shown is a URI leaked."""

    staff_only_fields: tuple[str, ...] = ()
    context: dict[str, Any]

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        request = self.context.get("request")
        if request is None or not getattr(request.user, "is_staff", False):
            for name in self.staff_only_fields:
                if name in data:
                    data[name] = ""
        return data


# The browsable API's forms list at most this many workspaces or operations as choices.
FORM_CHOICES_LIMIT = 200
