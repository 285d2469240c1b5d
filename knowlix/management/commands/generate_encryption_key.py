"""Print a new Fernet key for KNOWLIX_ENCRYPTION_KEY (see also generate_keys)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from knowlix.keys import new_encryption_key


class Command(BaseCommand):
    help = "Print a new key for KNOWLIX_ENCRYPTION_KEY (put it first to rotate)."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(new_encryption_key())
