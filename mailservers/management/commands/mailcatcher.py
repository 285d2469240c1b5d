"""``python manage.py mailcatcher``: the local mail catcher (see mailservers.mailcatcher)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mailservers.mailcatcher import parse_address, start_mailcatcher


class Command(BaseCommand):
    help = "Catch every mail sent to KNOWLIX_MAILCATCHER and show it on Local mailbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--addr",
            default=None,
            help="host:port to listen on (default: the KNOWLIX_MAILCATCHER setting)",
        )

    def handle(self, *args: object, **options: object) -> None:
        host, port = parse_address(str(options["addr"] or settings.KNOWLIX_MAILCATCHER))
        controller = start_mailcatcher(host, port)
        self.stdout.write(f"Mail catcher listening on {host}:{port} (Ctrl+C stops it)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
