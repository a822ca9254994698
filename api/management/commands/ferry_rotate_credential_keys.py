"""Re-encrypt stored credentials with the newest FERRY_CREDENTIAL_KEYS key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from rich.progress import Progress

from api.credentials import credentials_rotate_key
from api.models import Credential


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with the first key of FERRY_CREDENTIAL_KEYS. Put the "
        "new key first (keeping the old ones after it), run this, then remove the old keys."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        total = Credential.objects.exclude(secret_ciphertext="").count()
        with Progress(transient=True) as progress:
            task = progress.add_task("Re-encrypting credentials", total=total)
            done = credentials_rotate_key(lambda n: progress.advance(task, n))
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {done} credential(s) with the newest key.")
        )
