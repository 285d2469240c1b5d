"""``python manage.py fetch_mail [--server ID] [--all]``: poll incoming servers now.

Without ``--server``, polls every confirmed (or flagged) server that is due, or all of
them with ``--all``, in this process (no Celery needed). One failing server is
reported and the others are still polled; the exit status is 1 if any failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowlix.runtime import freeze_startup_heap
from mailservers.errors import MailServerError
from mailservers.models import IncomingServer
from mailservers.services.incoming import due_servers, poll_incoming_server


class Command(BaseCommand):
    help = "Fetch mail from incoming IMAP/POP3 servers now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", type=int, help="Poll only this server (id).")
        parser.add_argument(
            "--all",
            action="store_true",
            help="Poll every confirmed server, due or not.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        freeze_startup_heap()  # a long poll allocates a lot: see knowlix.runtime
        if options["server"]:
            servers = list(IncomingServer.objects.filter(pk=options["server"]))
            if not servers:
                raise CommandError(f"No incoming server with id {options['server']}.")
        elif options["all"]:
            servers = list(
                IncomingServer.objects.exclude(state=IncomingServer.State.DRAFT)
            )
        else:
            servers = list(due_servers())
        failed = 0
        for server in servers:
            try:
                result = poll_incoming_server(server=server)
            except MailServerError as exc:  # stored on the server row by the service
                failed += 1
                self.stderr.write(f"{server.name}: FAILED: {exc.user_message}")
                continue
            if result.skipped:
                self.stdout.write(f"{server.name}: skipped (another poll is running)")
            else:
                self.stdout.write(
                    f"{server.name}: {result.stored} stored, {result.duplicate} "
                    f"duplicate, {result.quarantined} quarantined, {result.refused} "
                    f"refused, {result.known} already known, {result.oversize} "
                    "too large"
                )
        if failed:
            raise CommandError(f"{failed} server(s) failed; see their last error.")
