"""Create a user (admins create accounts while registration is closed)."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api import services
from api.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create a Ferry user. Prints a generated password once when --password is not given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--password", help="The password (default: a generated one, printed once)."
        )
        parser.add_argument("--full-name", default="")
        parser.add_argument(
            "--staff", action="store_true", help="May see every workspace and use the admin."
        )
        parser.add_argument(
            "--superuser", action="store_true", help="Staff with every admin permission."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        generated = opts["password"] is None
        password = secrets.token_urlsafe(12) if generated else opts["password"]
        try:
            user = services.user_create(
                email=opts["email"],
                password=password,
                full_name=opts["full_name"],
                is_staff=opts["staff"] or opts["superuser"],
                is_superuser=opts["superuser"],
            )
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.details.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        self.stdout.write(self.style.SUCCESS(f"Created user {user.email} (id {user.id})."))
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
