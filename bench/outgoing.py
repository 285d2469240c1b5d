"""Benchmark: drain 5,000 queued mails through one SMTP server on loopback.

Run with no arguments: ``.venv/bin/python bench/outgoing.py``. It creates its own
test database (SQLite in a temporary directory, or ``test_<name>`` on PostgreSQL when
``DATABASE_URL`` points there) and starts the loopback SMTP server in a separate
process. It queues 5,000 mails with ``queue_mail``, then, in the same run, sends the
same prebuilt bytes with a bare ``smtplib`` loop over one connection (the baseline)
and drains the queue with ``process_outbox`` (ours). Resident memory is sampled
before and after the drain (it should not grow with the queue). Last line:
``RESULT outgoing ratio=<ours/baseline> ours=<mails/s> bare=<mails/s> ...``.
"""

from __future__ import annotations

import os
import smtplib
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


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def queue_all() -> float:
    from knowlix import params
    from mailservers.services.outgoing import MailRecipient, queue_mail

    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    start = time.perf_counter()
    for n in range(COUNT):
        queue_mail(
            from_address="alice@catchall.test",
            from_name="Alice Agent",
            recipients=[MailRecipient(f"customer{n}@example.test", f"Customer {n}")],
            subject=f"[TCK-{n}] Your printer is on fire",
            body_html=f"<p>Hello,</p><p>ticket {n} is <b>in progress</b>.</p>",
            send_now=False,
        )
    return time.perf_counter() - start


def bare_loop(port: int) -> float:
    """The baseline: the same prebuilt bytes, one smtplib connection."""
    from mailservers.models import OutgoingMail

    mails = list(OutgoingMail.objects.order_by("id").values_list("from_address", "raw"))
    rcpts = [f"customer{n}@example.test" for n in range(COUNT)]
    raws = [bytes(raw) for _sender, raw in mails]
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for (sender, _raw), raw, rcpt in zip(mails, raws, rcpts, strict=True):
            conn.sendmail(sender, [rcpt], raw)
    return time.perf_counter() - start


def main() -> None:
    from mailservers.models import OutgoingMail
    from mailservers.services import outbox

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = SmtpServerProcess(None).start()
    try:
        settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{server.port}"
        queue_seconds = queue_all()
        bare_seconds = bare_loop(server.port)
        rss_before = rss_mb()
        start = time.perf_counter()
        report = outbox.process_outbox()
        ours_seconds = time.perf_counter() - start
        rss_after = rss_mb()
        sent = OutgoingMail.objects.filter(state=OutgoingMail.State.SENT).count()
        assert sent == COUNT == report.sent, (sent, report)
    finally:
        server.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    ours, bare = COUNT / ours_seconds, COUNT / bare_seconds
    print(f"queued {COUNT} mails in {queue_seconds:.1f} s ({connection.vendor})")
    print(f"bare smtplib loop: {bare:.0f} mails/s; process_outbox: {ours:.0f} mails/s")
    print(f"memory during the drain: {rss_before:.0f} MB -> {rss_after:.0f} MB")
    print(
        f"RESULT outgoing ratio={ours / bare:.2f} ours={ours:.0f}/s bare={bare:.0f}/s "
        f"mails={COUNT} rss_growth_mb={rss_after - rss_before:.1f} db={connection.vendor}"
    )


if __name__ == "__main__":
    main()
