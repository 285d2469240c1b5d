"""``manage.py route_email [FILE]``: route one raw message (stdin without FILE).

For mail transfer agents (Postfix ``pipe``, Exim) and scripts. Prints one JSON object
``{"outcome", "routes", "reason"}``. Exit status 0 whenever the message was stored or
deliberately dropped; 1 only when it could not be handled at all (unreadable input,
database down), so the MTA keeps it and retries.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.services import route_incoming_messages


class Command(BaseCommand):
    help = "Route one RFC 5322 message from FILE or stdin; print the result as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="a .eml file (default: stdin)")
        parser.add_argument("--source", default="", help="label stored with the mail")

    def handle(
        self, *args: Any, file: str | None = None, source: str = "", **options: Any
    ) -> None:
        try:
            if file and file != "-":
                with open(file, "rb") as handle:
                    raw = handle.read()
            else:
                raw = sys.stdin.buffer.read()
        except OSError as exc:
            raise CommandError(f"cannot read the message: {exc}") from exc
        try:
            [result] = route_incoming_messages(
                raws=[raw], source=source or ("file" if file else "mta")
            )
        except Exception as exc:  # not stored: the MTA keeps the mail and retries
            raise CommandError(f"the message could not be handled: {exc}") from exc
        self.stdout.write(json.dumps(result.as_json(), ensure_ascii=False))
