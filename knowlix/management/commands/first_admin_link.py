"""Print the link of the first administrator's set-up page, while no user exists."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from knowlix import firstadmin


class Command(BaseCommand):
    help = (
        "Print the set-up link for the first administrator (only while no user exists)."
    )

    def handle(self, *args: object, **options: object) -> None:
        if not firstadmin.is_open():
            self.stdout.write("Users exist already: log in, or use createsuperuser.")
            return
        base = settings.KNOWLIX_BASE_URL.rstrip("/")
        self.stdout.write(
            f"No user yet. Create the first administrator at "
            f"{base}{firstadmin.setup_path()}"
        )
