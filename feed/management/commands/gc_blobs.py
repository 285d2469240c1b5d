"""``python manage.py gc_blobs``: delete attachment blobs nobody uses any more."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from feed import blob_gc


class Command(BaseCommand):
    help = (
        "Delete stored attachment files that no attachment references and that are "
        "older than the grace period (what the beat task does daily)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only list what would be deleted and the bytes it would free.",
        )
        parser.add_argument(
            "--grace-hours",
            type=int,
            default=int(blob_gc.GRACE.total_seconds() // 3600),
            help="Keep anything younger than this (default 24, at least 1): a post "
            "still in its transaction must never lose its file.",
        )

    def handle(self, *args: object, **options: object) -> None:
        hours = options["grace_hours"]
        if not isinstance(hours, int) or hours < 1:
            raise CommandError("--grace-hours must be at least 1.")
        dry_run = bool(options["dry_run"])
        report = blob_gc.collect_unused_blobs(
            grace=timedelta(hours=hours), dry_run=dry_run
        )
        verb = "would delete" if dry_run else "deleted"
        for name, size in report.rows:
            self.stdout.write(f"{verb} {name} ({size} bytes, unreferenced)")
        for name, size in report.stray_files:
            self.stdout.write(f"{verb} {name} ({size} bytes, no row)")
        freed = "would free" if dry_run else "freed"
        self.stdout.write(
            f"{verb} {len(report.rows)} unreferenced blob(s) and "
            f"{len(report.stray_files)} stray file(s); {freed} {report.bytes_freed} "
            f"bytes ({filesizeformat(report.bytes_freed)})"
        )
