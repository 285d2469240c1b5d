"""Run Knowlix in one terminal: web server, Celery worker with beat, local mail catcher.

This is what ``make run`` starts on the embedded default (SQLite, filesystem broker).
If any process exits, the others are stopped and the command exits with its status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse


class Command(BaseCommand):
    help = (
        "Start the web server, a Celery worker (with beat) and the local mail catcher."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-mailcatcher", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        python = sys.executable
        port = settings.PORT
        commands = {
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": [
                python, "-m", "celery", "-A", "knowlix", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "2",
                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }  # fmt: skip
        if not options["no_mailcatcher"]:
            commands["mailcatcher"] = [python, "manage.py", "mailcatcher"]
        procs = {
            name: subprocess.Popen(cmd, env=os.environ.copy())
            for name, cmd in commands.items()
        }
        url = f"http://127.0.0.1:{port}/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Knowlix is running at {url}\n"
                "  Log in as admin / admin (demo data only).\n"
                f"  Sent mail is caught locally: {url.rstrip('/')}{reverse('mailservers:localmailbox')}\n"
                "  Press Ctrl+C to stop.\n"
            )
        )
        status = 0

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # `kill` (SIGTERM) stops the children too, not only Ctrl+C.
        signal.signal(signal.SIGTERM, stop)
        try:
            while True:
                for name, proc in procs.items():
                    code = proc.poll()
                    if code is not None:
                        self.stderr.write(
                            f"{name} exited with status {code}; stopping."
                        )
                        status = code or 1
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        sys.exit(status)
