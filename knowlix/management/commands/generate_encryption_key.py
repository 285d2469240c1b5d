"""Print a new Fernet key for KNOWLIX_ENCRYPTION_KEY."""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print a new key for KNOWLIX_ENCRYPTION_KEY (put it first to rotate)."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(Fernet.generate_key().decode())
