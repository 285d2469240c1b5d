"""Print a new SECRET_KEY and KNOWLIX_ENCRYPTION_KEY as two .env lines.

``manage.py generate_keys`` runs this without loading the settings (see manage.py),
so it works on a fresh deployment with DEBUG=false and no key set yet.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from knowlix.keys import env_lines


class Command(BaseCommand):
    help = "Print SECRET_KEY=… and KNOWLIX_ENCRYPTION_KEY=… lines for .env."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(env_lines(), ending="")
