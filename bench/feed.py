"""Benchmark: the first screen of a record's feed with 100 and 10,000 messages.

Run with no arguments: ``.venv/bin/python bench/feed.py``. It creates its own test
database (SQLite in a temporary directory, or ``test_<name>`` on PostgreSQL when
``DATABASE_URL`` points there), fills a ticket with messages that have authors,
attachments, recipients and delivery states, then times the record page (the
whole request, feed included) and counts its SQL queries. Beside it, in the same
run, the bare baseline: one raw ``SELECT`` of the same page of message rows.
Prints, per size, ``RESULT feed ratio=<bare/ours> queries=<n> median_ms=<m>``
(the 10,000-message line is last).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
# Our own files (SQLite test database, media) away from anyone else's.
os.environ["KNOWLIX_VAR_DIR"] = tempfile.mkdtemp(prefix="knowlix-bench-feed-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

SIZES = (100, 10_000)
WARMUP = 3
RUNS = 30


def median_ms(fn) -> float:  # noqa: ANN001
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def build_ticket(alice: User, count: int):  # noqa: ANN201
    from feed.services import records as services
    from knowlix.models import Contact, Ticket
    from tests.fixtures_bulk import make_messages

    contact = Contact.objects.create(
        name=f"Customer {count}", email=f"c{count}@customer.example"
    )
    ticket = services.create_record(
        record=Ticket(subject=f"Ticket with {count} messages", contact=contact),
        author=alice,
    )
    make_messages(record=ticket, author=alice, contact=contact, count=count - 1)
    return ticket


def bare_select(ticket) -> None:  # noqa: ANN001
    """The same page of rows, fetched with one raw SELECT (no ORM, no template)."""
    from feed.models import Message
    from feed.selectors import FEED_PAGE_SIZE

    ct = ContentType.objects.get_for_model(ticket)
    table = connection.ops.quote_name(Message._meta.db_table)
    sql = (
        f"SELECT * FROM {table} WHERE content_type_id = %s AND object_id = %s "
        "ORDER BY created_at DESC, id DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ct.pk, ticket.pk, FEED_PAGE_SIZE])
        cursor.fetchall()


def measure(client: Client, ticket) -> tuple[int, float, float]:  # noqa: ANN001
    url = ticket.get_absolute_url()

    def page() -> None:
        response = client.get(url)
        if response.status_code != 200 or b'id="feed-panel"' not in response.content:
            raise RuntimeError(f"{url} answered {response.status_code} without a feed")

    from tests.fixtures_bulk import QueryCounter

    page()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        page()
    ours = median_ms(page)
    bare = median_ms(lambda: bare_select(ticket))
    return counter.count, ours, bare


def main() -> None:
    # No setup_test_environment(): its instrumented template rendering would be
    # timed too. The client only needs its host allowed.
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from feed.services import ensure_default_data
        from knowlix.setup import EMPLOYEES, ensure_default_groups

        ensure_default_data()
        groups = ensure_default_groups()
        alice = User.objects.create_user("alice", "alice@example.com", "pw-alice")
        alice.groups.add(groups[EMPLOYEES])
        client = Client()
        client.force_login(alice)
        vendor = connection.vendor
        for size in SIZES:
            start = time.perf_counter()
            ticket = build_ticket(alice, size)
            built = time.perf_counter() - start
            queries, ours, bare = measure(client, ticket)
            print(
                f"feed messages={size} db={vendor} setup_s={built:.1f} "
                f"queries={queries} median_ms={ours:.2f} bare_select_ms={bare:.3f}"
            )
            print(
                f"RESULT feed ratio={bare / ours:.4f} queries={queries} median_ms={ours:.2f}"
            )
            sys.stdout.flush()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
