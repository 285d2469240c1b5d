"""Benchmark: one post to a record with 100,000 contact followers.

Run with no arguments: ``.venv/bin/python bench/mass_send.py`` (``--count N`` for
another size). It creates its own test database (SQLite in a temporary directory,
or ``test_<name>`` on PostgreSQL when ``DATABASE_URL`` points there), a ticket and
its followers, then posts one email on it: the post itself (what the web request
waits for) and the fan-out task (``feed.fanout.fan_out_message``, chunk by chunk)
that writes each follower's recipient row and queues the mail, timed apart.
Resident memory is sampled every 0.25 s during the fan-out: it must stay flat.
The baseline, in the same run, writes the same number of rows bare (one
``executemany`` per table: message recipients, outgoing recipients), without any
rule, MIME or chunking. Last line:
``RESULT mass_send ratio=<ours/baseline> seconds=<fan-out> recipients_per_s=... ``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
os.environ["KNOWLIX_VAR_DIR"] = tempfile.mkdtemp(prefix="knowlix-bench-mass-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

settings.DEBUG = False  # production-like: no query log kept in memory

COUNT = 100_000


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def bare_rows(count: int) -> float:
    """The baseline: the same number of recipient rows, written bare."""
    from feed.models import MessageRecipient
    from tests.fixtures_bulk import write_bare_recipients

    message_id = MessageRecipient.objects.values_list("message_id", flat=True)[0]
    start = time.perf_counter()
    # One transaction, as the fan-out writes a chunk (autocommit would make the
    # baseline commit, and on PostgreSQL flush, once per row).
    with transaction.atomic(), connection.cursor() as cursor:
        write_bare_recipients(cursor, message_id=message_id, count=count)
    return time.perf_counter() - start


def main() -> None:
    from django.contrib.auth.models import User

    from feed import fanout
    from feed.services import post_message
    from knowlix import params
    from knowlix.models import Ticket
    from mailservers.models import OutgoingRecipient
    from tests.fixtures_bulk import add_contact_followers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help="followers")
    count = parser.parse_args().count
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
        alice = User.objects.create_user("alice", "alice@catchall.test", "x")
        ticket = Ticket.objects.create(subject="Outage notice", owner=alice)
        setup_start = time.perf_counter()
        add_contact_followers(record=ticket, count=count)
        setup = time.perf_counter() - setup_start

        start = time.perf_counter()
        message = post_message(
            record=ticket,
            kind="email",
            author=alice,
            body_html="<p>The service is back. Thank you for your patience.</p>",
        )
        request_seconds = time.perf_counter() - start
        assert message.fanout_total >= count, message.fanout_total

        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                samples.append(rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        rss_before = rss_mb()
        sampler.start()
        start = time.perf_counter()
        handled = fanout.fan_out_message(message_id=message.pk)
        ours = time.perf_counter() - start
        done.set()
        sampler.join()
        rss_peak = max([rss_before, *samples])
        mailed = OutgoingRecipient.objects.filter(
            address__endswith="@customers.example"
        ).count()
        assert handled >= count and mailed == count, (handled, mailed)
        bare = bare_rows(count)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    rate, bare_rate = count / ours, count / bare
    print(f"{count} followers made in {setup:.1f} s ({connection.vendor})")
    print(f"post (the web request's part): {request_seconds * 1000:.0f} ms")
    print(
        f"fan-out: {ours:.1f} s, {rate:.0f} recipients/s (bare rows: {bare_rate:.0f}/s)"
    )
    print(f"memory during the fan-out: {rss_before:.0f} MB -> peak {rss_peak:.0f} MB")
    print(
        f"RESULT mass_send ratio={rate / bare_rate:.2f} seconds={ours:.1f} "
        f"recipients_per_s={rate:.0f} bare_per_s={bare_rate:.0f} recipients={count} "
        f"request_ms={request_seconds * 1000:.0f} "
        f"rss_growth_mb={rss_peak - rss_before:.1f} db={connection.vendor}"
    )


if __name__ == "__main__":
    main()
