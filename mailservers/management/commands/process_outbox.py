"""``python manage.py process_outbox``: one drain pass of the outgoing queue."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from mailservers.services import outbox


class Command(BaseCommand):
    help = "Send every due outgoing mail once (what the beat task does every minute)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recover",
            action="store_true",
            help=(
                "First hand back the mail of crashed workers at once (claims whose "
                "process is gone or whose lease ended) and expire old mail."
            ),
        )

    def handle(self, *args: object, **options: object) -> None:
        if options["recover"]:
            count, expired = outbox.sweep_queue()
            self.stdout.write(f"recovered {count} stuck mail(s), expired {expired}")
        report = outbox.process_outbox()
        self.stdout.write(
            f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}, "
            f"held back {report.released}"
        )
