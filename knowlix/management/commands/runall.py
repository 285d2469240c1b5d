"""Run Knowlix in one terminal: web server, Celery worker, beat, local mail catcher.

This is what ``make run`` starts on the embedded default (SQLite, filesystem broker).
If any process exits, the others are stopped and the command exits with its status.

Stopping (Ctrl+C or one SIGTERM) ends every process of every child within
``STOP_SECONDS``, without a traceback: each child runs in its own session (so the
terminal's Ctrl+C reaches only this command, never a child halfway), and its whole
process group is stopped — a Celery worker's pool included — with SIGTERM, then
SIGKILL for whatever is left after the grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

STOP_SECONDS = 8.0  # the grace period before SIGKILL (the promise is 10 s)
POLL_SECONDS = 0.2


def group_alive(pgid: int) -> bool:
    """Is any process of the group ``pgid`` still running (zombies aside)?"""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:  # noqa: PTH123
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(pgid, signum)


def stop_groups(procs: dict[str, subprocess.Popen]) -> None:
    """Stop each child, then anything left in its process group.

    SIGTERM goes to each child itself, which stops its own helpers in order (a
    Celery worker its pool and beat: a warm shutdown, mail being sent finishes).
    Once a child has exited, what is left of its group gets SIGTERM too; whatever
    still runs after the grace period gets SIGKILL."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    groups = {proc.pid: proc for proc in procs.values()}
    swept: set[int] = set()
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        for pgid, proc in groups.items():
            if proc.poll() is not None and pgid not in swept:
                signal_group(pgid, signal.SIGTERM)  # orphans of an exited child
                swept.add(pgid)
        if all(p.poll() is not None for p in groups.values()) and not any(
            group_alive(pgid) for pgid in groups
        ):
            return
        time.sleep(POLL_SECONDS)
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


class Command(BaseCommand):
    help = (
        "Start the web server, a Celery worker, Celery beat and the local mail catcher."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-mailcatcher", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        stopping: list[str] = []

        def stop(signum: int, frame: object) -> None:
            stopping.append(signal.Signals(signum).name)

        # Set before any child starts: a signal now only asks the loop to stop.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        python = sys.executable
        port = settings.PORT
        commands = {
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            # Threads, not prefork: no pool processes to outlive the worker (seen
            # once for 45 minutes), and a warm shutdown in about a second.
            "worker": [
                python, "-m", "celery", "-A", "knowlix", "worker", "--pool", "threads",
                "--loglevel", "INFO", "--concurrency", "2", "--without-gossip",
                "--without-mingle", "--without-heartbeat",
            ],
            # Beat on its own (not the worker's --beat): it stops at once on
            # SIGTERM, where an embedded beat holds the worker's shutdown back.
            "beat": [
                python, "-m", "celery", "-A", "knowlix", "beat", "--loglevel", "INFO",
                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }  # fmt: skip
        if not options["no_mailcatcher"]:
            commands["mailcatcher"] = [python, "manage.py", "mailcatcher"]
        procs: dict[str, subprocess.Popen] = {}
        status = 0
        try:
            for name, cmd in commands.items():
                if stopping:
                    break
                procs[name] = subprocess.Popen(
                    cmd, env=os.environ.copy(), start_new_session=True
                )
            url = f"http://127.0.0.1:{port}/"
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  Knowlix is running at {url}\n"
                    "  Log in as admin / admin (demo data only).\n"
                    f"  Sent mail is caught locally: {url.rstrip('/')}"
                    f"{reverse('mailservers:localmailbox')}\n"
                    "  Press Ctrl+C to stop.\n"
                )
            )
            while not stopping:
                for name, proc in procs.items():
                    code = proc.poll()
                    if code is not None and not stopping:
                        self.stderr.write(
                            f"{name} exited with status {code}; stopping."
                        )
                        status = code or 1
                        stopping.append(name)
                time.sleep(POLL_SECONDS)
        finally:
            # A second Ctrl+C while stopping changes nothing (and prints nothing).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stdout.write("\n  Stopping Knowlix…")
            stop_groups(procs)
            self.stdout.write("  Stopped.")
        sys.exit(status)
