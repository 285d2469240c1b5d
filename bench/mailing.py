"""Benchmark: one mailing to 100,000 contacts, from Send to every mail queued.

Run with no arguments: ``.venv/bin/python bench/mailing.py``. It creates its own
test database (SQLite in a temporary directory, or ``test_<name>`` on PostgreSQL
when ``DATABASE_URL`` points there), 100,000 contacts with an address and a
mailing to all of them, then times apart: the Send click (what the web request
waits for: ``start_sending``), the worker's post (``post_mailing``: the audience
subscribed in set-based statements, the post written) and the fan-out task
(``fan_out_message``: each contact's recipient row, its own mail with its own
unsubscribe link). Resident memory is sampled every 0.25 s during the worker's
part: it must stay flat. The baseline, in the same run, writes the same number of
rows bare (one ``executemany`` per table: followers, message recipients, outgoing
recipients), without any rule, MIME, signing or chunking. Last line:
``RESULT mailing ratio=<ours/baseline> seconds=<post + fan-out> recipients_per_s=...``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
os.environ["KNOWLIX_VAR_DIR"] = tempfile.mkdtemp(prefix="knowlix-bench-mailing-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

settings.DEBUG = False  # production-like: no query log kept in memory

COUNT = 100_000
CHUNK = 5000


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def backend_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend so far (0 on SQLite,
    or when the server is not on this host)."""
    if connection.vendor != "postgresql":
        return 0.0
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_contacts(count: int) -> None:
    from knowlix.models import Contact

    for start in range(0, count, CHUNK):
        with transaction.atomic():
            Contact.objects.bulk_create(
                Contact(
                    name=f"Customer {n}",
                    email=f"c{n}@customers.example",
                    email_normalized=f"c{n}@customers.example",
                    company="Customers",
                )
                for n in range(start, min(start + CHUNK, count))
            )


def bare_rows(count: int, message_id: int) -> float:
    """The baseline: the same number of rows, written bare."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from feed.models import Follower
    from knowlix.models import Contact, Ticket
    from tests.fixtures_bulk import write_bare_recipients

    contacts = list(Contact.objects.order_by("pk").values_list("pk", flat=True))
    assert len(contacts) == count

    ticket = Ticket.objects.create(subject="bare")
    ct = ContentType.objects.get_for_model(Ticket)
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    start = time.perf_counter()
    # One transaction, as the fan-out writes a chunk (autocommit would make the
    # baseline commit, and on PostgreSQL flush, once per row).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {q(Follower._meta.db_table)} (content_type_id, object_id, "
            "contact_id, created_at) VALUES (%s, %s, %s, %s)",
            [(ct.pk, ticket.pk, pk, now) for pk in contacts],
        )
        write_bare_recipients(cursor, message_id=message_id, count=count)
    return time.perf_counter() - start


def main() -> None:
    from django.contrib.auth.models import User

    from feed import fanout
    from feed.services import create_record
    from feed.services import mailings as services
    from knowlix import params
    from knowlix.models import Mailing
    from knowlix.runtime import freeze_startup_heap
    from mailservers.models import OutgoingRecipient

    # As the Celery worker does once started (knowlix.runtime).
    freeze_startup_heap()
    count = COUNT
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
        admin = User.objects.create_user(
            "admin", "admin@yourcompany.example", "x", is_staff=True
        )
        setup_start = time.perf_counter()
        make_contacts(count)
        setup = time.perf_counter() - setup_start
        mailing = create_record(
            record=Mailing(
                subject="Our spring collection",
                body="Hello,\n\nOur spring collection is in the showroom.",
                owner=admin,
            ),
            author=admin,
        )
        assert isinstance(mailing, Mailing)

        start = time.perf_counter()
        services.start_sending(mailing=mailing, user=admin)
        request_seconds = time.perf_counter() - start

        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                samples.append(rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        rss_before = rss_mb()
        sampler.start()
        start = time.perf_counter()
        cpu_start = time.process_time()
        server_start = backend_cpu()
        message = services.post_mailing(mailing_id=mailing.pk)
        assert message is not None and message.fanout_total == count
        post_seconds = time.perf_counter() - start
        handled = fanout.fan_out_message(message_id=message.pk)
        services.mark_sent(message_id=message.pk)
        ours = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        server = backend_cpu() - server_start
        done.set()
        sampler.join()
        rss_peak = max([rss_before, *samples])
        mailing.refresh_from_db()
        mailed = OutgoingRecipient.objects.filter(
            address__endswith="@customers.example"
        ).count()
        assert handled == count and mailed == count, (handled, mailed)
        assert mailing.state == Mailing.State.SENT, mailing.state
        bare = bare_rows(count, message.pk)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    rate, bare_rate = count / ours, count / bare
    print(f"{count} contacts made in {setup:.1f} s ({connection.vendor})")
    print(f"Send (the web request's part): {request_seconds * 1000:.0f} ms")
    print(f"worker: post {post_seconds:.1f} s, then the fan-out; in all {ours:.1f} s")
    print(f"  {rate:.0f} recipients/s (bare rows: {bare_rate:.0f}/s)")
    print(f"  CPU in this process: {cpu * 1e6 / count:.0f} us per recipient")
    if server:
        print(
            f"  CPU of the PostgreSQL backend: {server * 1e6 / count:.0f} us per recipient"
        )
    print(f"memory during the worker's part: {rss_before:.0f} MB -> {rss_peak:.0f} MB")
    print(
        f"RESULT mailing ratio={rate / bare_rate:.2f} seconds={ours:.1f} "
        f"recipients_per_s={rate:.0f} bare_per_s={bare_rate:.0f} recipients={count} "
        f"request_ms={request_seconds * 1000:.0f} post_s={post_seconds:.1f} "
        f"cpu_us_per_recipient={cpu * 1e6 / count:.0f} "
        f"server_cpu_us_per_recipient={server * 1e6 / count:.0f} "
        f"rss_growth_mb={rss_peak - rss_before:.1f} db={connection.vendor}"
    )


if __name__ == "__main__":
    main()
