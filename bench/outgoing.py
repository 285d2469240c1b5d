"""Benchmark: drain 5,000 queued mails through one SMTP server on loopback.

Run with no arguments: ``.venv/bin/python bench/outgoing.py``. It creates its own
test database (SQLite in a temporary directory, or ``test_<name>`` on PostgreSQL when
``DATABASE_URL`` points there) and starts the loopback SMTP server in a separate
process. It queues 5,000 mails with ``queue_mail``, then, in the same run, sends the
same prebuilt bytes with a bare ``smtplib`` loop over one connection (the baseline)
and drains the queue with ``process_outbox`` (ours). The machine is shared, so the
two alternate in rounds of 500 mails, one batch and one connection each (the queue
still holds all 5,000; each round makes its 500 due) and the totals are compared. Resident memory is sampled before
the first and after the last drain (it should not grow with the queue). Last line:
``RESULT outgoing ratio=<ours/baseline> ours=<mails/s> bare=<mails/s> ...``.

``--workers N`` (optional) also drains 4,000 more mails in four runs of 1,000: one
worker process, N worker processes at once (``process_outbox`` each, started
together), N again, then one (drift hits both sides alike), and adds both rates to
the RESULT line (``workers_gain`` = N / one).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
os.environ["KNOWLIX_VAR_DIR"] = tempfile.mkdtemp(prefix="knowlix-bench-outgoing-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.servers.smtp import SmtpServerProcess  # noqa: E402

COUNT = 5_000
ROUND = 500  # = outbox.BATCH_SIZE: one batch, one connection, on each side
WORKERS_COUNT = 2_000  # mails drained by one worker, and as many by N
WORKER = """
import os, sys, time
import django
django.setup()
from mailservers.services import outbox
open(sys.argv[2], "w").close()  # ready: Django is set up
while not os.path.exists(sys.argv[1]):
    time.sleep(0.005)
print(outbox.process_outbox().sent)
"""


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def queue_all(count: int) -> float:
    from knowlix import params
    from mailservers.services.outgoing import MailRecipient, queue_mail

    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    start = time.perf_counter()
    for n in range(count):
        queue_mail(
            from_address="alice@catchall.test",
            from_name="Alice Agent",
            recipients=[MailRecipient(f"customer{n}@example.test", f"Customer {n}")],
            subject=f"[TCK-{n}] Your printer is on fire",
            body_html=f"<p>Hello,</p><p>ticket {n} is <b>in progress</b>.</p>",
            send_now=False,
        )
    return time.perf_counter() - start


def bare_loop(port: int, ids: list[int]) -> float:
    """The baseline: the same prebuilt bytes, one smtplib connection."""
    from mailservers.models import OutgoingMail

    rows = OutgoingMail.objects.filter(pk__in=ids).order_by("id")
    mails = [
        (sender, rcpt, bytes(raw))
        for sender, rcpt, raw in rows.values_list(
            "from_address", "recipients__address", "raw"
        )
    ]
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for sender, rcpt, raw in mails:
            conn.sendmail(sender, [rcpt], raw)
    return time.perf_counter() - start


def drain(ids: list[int]) -> float:
    """Ours: make these mails due and run one process_outbox pass."""
    from django.utils import timezone

    from mailservers.models import OutgoingMail
    from mailservers.services import outbox

    OutgoingMail.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
    start = time.perf_counter()
    report = outbox.process_outbox()
    seconds = time.perf_counter() - start
    assert report.sent == len(ids), report
    return seconds


def drain_with_workers(port: int, ids: list[int], workers: int) -> float:
    """Make ``ids`` due and drain them with ``workers`` processes started together
    (timed from the go signal, once each has set Django up)."""
    from django.utils import timezone

    from mailservers.models import OutgoingMail
    from tests.mailservers.test_outgoing_concurrency import database_url

    OutgoingMail.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "KNOWLIX_SMTP_URL": f"smtp://127.0.0.1:{port}",
    }
    flags = Path(tempfile.mkdtemp(prefix="knowlix-bench-workers-"))
    go = flags / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go), str(flags / f"ready{n}")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for n in range(workers)
    ]
    while len(list(flags.glob("ready*"))) < workers:
        time.sleep(0.01)
    start = time.perf_counter()
    go.touch()
    sent = sum(int(proc.communicate()[0].split()[-1]) for proc in procs)
    seconds = time.perf_counter() - start
    assert sent == len(ids), (sent, len(ids))
    return seconds


def main() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from mailservers.models import OutgoingMail

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="also compare N workers")
    workers = parser.parse_args().workers
    total = COUNT + (2 * WORKERS_COUNT if workers else 0)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = SmtpServerProcess(None).start()
    bare_seconds = ours_seconds = 0.0
    try:
        settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{server.port}"
        queue_seconds = queue_all(total)
        later = timezone.now() + timedelta(days=1)
        OutgoingMail.objects.update(next_attempt_at=later)
        every = list(OutgoingMail.objects.order_by("id").values_list("pk", flat=True))
        ids, extra = every[:COUNT], every[COUNT:]
        rounds = [ids[i : i + ROUND] for i in range(0, len(ids), ROUND)]
        rss_before = rss_mb()
        for number, chunk in enumerate(rounds):
            if number % 2:  # alternate who goes first, so drift hits both
                ours_seconds += drain(chunk)
                bare_seconds += bare_loop(server.port, chunk)
            else:
                bare_seconds += bare_loop(server.port, chunk)
                ours_seconds += drain(chunk)
        rss_after = rss_mb()
        sent = OutgoingMail.objects.filter(state=OutgoingMail.State.SENT).count()
        assert sent == COUNT, sent
        if workers:
            # one, N, N, one: a drift of the host's speed hits both sides alike
            half = WORKERS_COUNT // 2
            runs = [extra[i : i + half] for i in range(0, 2 * WORKERS_COUNT, half)]
            one = drain_with_workers(server.port, runs[0], 1)
            many = drain_with_workers(server.port, runs[1], workers)
            many += drain_with_workers(server.port, runs[2], workers)
            one += drain_with_workers(server.port, runs[3], 1)
    finally:
        server.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    ours, bare = COUNT / ours_seconds, COUNT / bare_seconds
    print(f"queued {total} mails in {queue_seconds:.1f} s ({connection.vendor})")
    print(f"bare smtplib loop: {bare:.0f} mails/s; process_outbox: {ours:.0f} mails/s")
    print(f"memory across the drains: {rss_before:.0f} MB -> {rss_after:.0f} MB")
    figures = ""
    if workers:
        rate_one, rate_many = WORKERS_COUNT / one, WORKERS_COUNT / many
        print(f"1 worker: {rate_one:.0f} mails/s; {workers} workers: {rate_many:.0f}")
        figures = (
            f" workers={workers} one_worker={rate_one:.0f}/s "
            f"{workers}_workers={rate_many:.0f}/s workers_gain={rate_many / rate_one:.2f}"
        )
    print(
        f"RESULT outgoing ratio={ours / bare:.2f} ours={ours:.0f}/s bare={bare:.0f}/s "
        f"mails={COUNT} rss_growth_mb={rss_after - rss_before:.1f} "
        f"db={connection.vendor}{figures}"
    )


if __name__ == "__main__":
    main()
