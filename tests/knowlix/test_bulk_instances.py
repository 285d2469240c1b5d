"""``insert_instances`` writes what ``bulk_create`` writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from django.db.models.functions import Now
from django.forms.models import model_to_dict

from feed.models import Message
from knowlix.bulk import insert_instances
from knowlix.models import Contact, Ticket
from routing.models import InboundMail


def _message(ticket: Ticket, n: int, *, author_contact: Contact | None) -> Message:
    return Message(
        content_object=ticket,
        kind=Message.Kind.EMAIL,
        direction=Message.Direction.INCOMING,
        author_contact=author_contact,
        subject=f"Request {n} — é",
        body_html=f"<p>Hello {n}</p>",
        body_text=f"Hello {n}",
        message_id=f"<rows-{n}@example.test>",
        is_unverified_sender=n % 2 == 0,
    )


def _saved(message: Message) -> dict:
    row = model_to_dict(Message.objects.get(pk=message.pk))
    row.pop("id")
    row.pop("message_id")
    return row


def test_rows_match_bulk_create_and_get_their_ids(ticket, db):
    """Each row holds what bulk_create writes, ids set in order, saved state."""
    contacts = [Contact(name="New", email="new@example.test")]
    ours = [_message(ticket, n, author_contact=contacts[0]) for n in range(3)]
    theirs = [_message(ticket, n + 10, author_contact=None) for n in range(3)]
    insert_instances(contacts)  # saved after being assigned: its id is taken
    assert insert_instances(ours) == ours
    Message.objects.bulk_create(theirs)
    for mine, django_one in zip(ours, theirs, strict=True):
        assert mine.pk is not None and not mine._state.adding
        assert Message.objects.get(pk=mine.pk).subject == mine.subject
        mine_row, their_row = _saved(mine), _saved(django_one)
        assert mine_row.pop("author_contact") == contacts[0].pk
        their_row.pop("author_contact")
        mine_row["subject"] = mine_row["subject"].replace(
            mine.subject.split()[1], django_one.subject.split()[1]
        )
        for field in ("body_html", "body_text", "created_at"):
            mine_row.pop(field), their_row.pop(field)
        assert mine_row == their_row
    assert [m.pk for m in ours] == sorted(m.pk for m in ours)


def test_binary_and_json_fields_round_trip(db):
    """Raw bytes and JSON reach the database as bulk_create would write them."""
    rows = [
        InboundMail(
            sha256=f"{n:064x}",
            message_id=f"<raw-{n}@example.test>",
            raw=b"Subject: x\r\n\r\n\x00\xff" + bytes([n]),
            source="test",
            routes=[{"action": "created", "record": "knowlix.ticket:1", "n": n}],
        )
        for n in range(3)
    ]
    insert_instances(rows)
    for n, row in enumerate(rows):
        stored = InboundMail.objects.get(pk=row.pk)
        assert bytes(stored.raw) == b"Subject: x\r\n\r\n\x00\xff" + bytes([n])
        assert stored.routes == [
            {"action": "created", "record": "knowlix.ticket:1", "n": n}
        ]
        assert stored.received_at is not None


def test_an_expression_value_is_left_to_bulk_create(ticket, db):
    """A value to compile (the database's clock) makes bulk_create write the
    rows: all of them, ids set."""
    messages = [_message(ticket, n, author_contact=None) for n in range(2)]
    messages[1].created_at = Now()
    insert_instances(messages)
    assert all(m.pk is not None for m in messages)
    stored = Message.objects.filter(message_id__startswith="<rows-")
    assert stored.count() == 2
    assert stored.get(pk=messages[1].pk).created_at is not None
