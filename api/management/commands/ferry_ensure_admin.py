"""Make sure an admin account exists (used by `make run` and deployment)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from api.models import User


class Command(BaseCommand):
    help = (
        "Create the admin user if it does not exist yet. The email comes from --email or "
        "FERRY_ADMIN_EMAIL (default admin@ferry.local); the password from FERRY_ADMIN_PASSWORD, "
        "or a generated one printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--email", default=os.environ.get("FERRY_ADMIN_EMAIL", "admin@ferry.local")
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        email = opts["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            self.stdout.write(f"Admin user {email} already exists (its password is unchanged).")
            return
        password = os.environ.get("FERRY_ADMIN_PASSWORD") or ""
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin user {email}."))
        if generated:
            self.stdout.write(
                self.style.WARNING(f"Admin password (shown once, keep it): {password}")
            )
