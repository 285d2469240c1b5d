"""``manage.py dkim_keygen [--bits N] [--rotate]``: make Knowlix's DKIM signing key.

The private key is stored encrypted (KNOWLIX_ENCRYPTION_KEY); the command prints the
TXT record to publish at ``<selector>._domainkey.<KNOWLIX_DKIM_TARGET_DOMAIN>``.
Replacing an active key needs ``--rotate``: domains fail DKIM until it is published.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dnscheck import services, signing


class Command(BaseCommand):
    help = "Generate Knowlix's DKIM signing key and print its DNS record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bits", type=int, default=2048, choices=[1024, 2048, 4096]
        )
        parser.add_argument(
            "--rotate", action="store_true", help="replace the active key"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        current = signing.get_active_dkim_key()
        if current is not None and not options["rotate"]:
            raise CommandError(
                f"An active key exists ({current}). Pass --rotate to replace it; "
                "publish the new record before domains are re-checked."
            )
        key = services.generate_dkim_key(bits=int(options["bits"]))
        name = f"{key.selector}._domainkey.{settings.KNOWLIX_DKIM_TARGET_DOMAIN}."
        self.stdout.write(f"Created {key}. Publish this TXT record:")
        self.stdout.write(f'{name} TXT "{key.dns_record}"')
