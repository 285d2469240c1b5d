"""``feed.services.create_records``: many new records, one insert per kind,
unless saving a record does more than an insert."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from feed.models import Follower, Message
from feed.services import create_records
from knowlix.models import Expense, Ticket


def inserts(queries, table: str) -> int:
    """Statements writing new rows into ``table``: an INSERT, or on PostgreSQL the
    binary COPY knowlix.bulk uses for plain rows."""
    heads = (f'INSERT INTO "{table}"', f'COPY "{table}"')
    return sum(q["sql"].startswith(heads) for q in queries)


def test_new_records_of_a_kind_are_inserted_together(alice, bob, groups):
    """Each record gets its owner, followers and "created" notice; one INSERT per kind."""
    entries = [
        (Ticket(subject="One"), alice),
        (Ticket(subject="Two"), bob),
        (Expense(description="Taxi"), alice),
    ]
    with CaptureQueriesContext(connection) as queries:
        records = create_records(entries)
    assert inserts(queries, "knowlix_ticket") == 1
    assert inserts(queries, "knowlix_expense") == 1
    assert [r.owner for r in records] == [alice, bob, alice]
    assert all(r.pk for r in records)
    for record in records:
        on_record = {
            "content_type": ContentType.objects.get_for_model(record),
            "object_id": record.pk,
        }
        assert Message.objects.get(**on_record, subtype__code="created")
        assert Follower.objects.get(**on_record, user=record.owner)


def test_a_kind_with_save_receivers_is_saved_one_by_one(alice, groups):
    """A post_save receiver still hears of every new record."""
    heard = []

    def receiver(sender, instance, created, **kwargs):
        heard.append((instance.subject, created))

    post_save.connect(receiver, sender=Ticket)
    try:
        create_records([(Ticket(subject="One"), alice), (Ticket(subject="Two"), alice)])
    finally:
        post_save.disconnect(receiver, sender=Ticket)
    assert heard == [("One", True), ("Two", True)]
