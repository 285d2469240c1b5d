"""``knowlix.bulk.insert_rows`` writes the rows ``bulk_create`` would write: the
same values read back on each backend (dates, bytes, booleans, NULLs, defaults,
foreign keys given as instances), primary keys in row order across batches."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DataError, IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from knowlix import bulk
from knowlix.bulk import insert_rows
from knowlix.models import Ticket
from mailservers.models import OutgoingMail, OutgoingRecipient

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC)
COLUMNS = ("message_id", "raw", "size", "needs_smtputf8", "next_attempt_at", "sent_at")


def values(n: int, tag: str) -> tuple:
    raw = bytes(range(256)) + f"Subject: Grüße {tag}{n}\r\n".encode()
    sent = None if n % 2 else WHEN
    return (f"<{tag}{n}@bulk.test>", raw, len(raw), bool(n % 2), WHEN, sent)


def as_read(mail: OutgoingMail) -> dict:
    row = model_to_dict(mail, exclude=["id", "message_id"])
    row["raw"] = bytes(mail.raw)
    row["created_at_set"] = row.pop("created_at", None) is not None
    return row


@pytest.mark.parametrize("per_statement", [2, 1000])
def test_rows_read_back_as_bulk_create_writes_them(db, monkeypatch, per_statement):
    monkeypatch.setattr(bulk, "MAX_ROWS", per_statement)
    ct = ContentType.objects.get_for_model(Ticket)
    shared = {
        "content_type": ct,  # an instance, as bulk_create takes it
        "object_id": 7,
        "from_address": "alice@bulk.test",
        "from_name": "Ålice",
        "subject": "Grüße",
    }
    expected = OutgoingMail.objects.bulk_create(
        OutgoingMail(**shared, **dict(zip(COLUMNS, values(n, "them"), strict=True)))
        for n in range(5)
    )
    ids = insert_rows(
        OutgoingMail,
        columns=COLUMNS,
        rows=[values(n, "ours") for n in range(5)],
        constants=shared,
        returning=True,
    )
    assert len(ids) == 5 and ids == sorted(ids)
    assert set(ids).isdisjoint(m.pk for m in expected)
    ours = OutgoingMail.objects.in_bulk(ids)
    theirs = OutgoingMail.objects.in_bulk([m.pk for m in expected])
    for n, (pk, mine) in enumerate(zip(ids, expected, strict=True)):
        assert ours[pk].message_id == f"<ours{n}@bulk.test>"  # pks in row order
        got, want = as_read(ours[pk]), as_read(theirs[mine.pk])
        assert got.pop("raw") != want.pop("raw")  # each row its own bytes...
        assert bytes(ours[pk].raw).endswith(f"Grüße ours{n}\r\n".encode())
        assert got == want  # ...and every other value as bulk_create wrote it
    assert ours[ids[0]].next_attempt_at == WHEN and ours[ids[1]].sent_at is None
    assert ours[ids[0]].sent_at == WHEN and ours[ids[1]].needs_smtputf8
    assert ours[ids[0]].state == OutgoingMail.State.QUEUED  # defaults filled


def test_rows_without_returning_and_nullable_foreign_keys(db):
    mail = OutgoingMail.objects.create(
        from_address="a@bulk.test", message_id="<x@bulk.test>", raw=b"x"
    )
    assert (
        insert_rows(
            OutgoingRecipient,
            columns=("mail_id", "address", "message_recipient_id", "verp_token"),
            rows=[
                (mail.pk, "b@bulk.test", None, "t1"),
                (mail.pk, "c@bulk.test", None, ""),
            ],
        )
        == []
    )
    rows = list(mail.recipients.values_list("address", "state", "kind", "verp_token"))
    assert rows == [
        ("b@bulk.test", "queued", "to", "t1"),
        ("c@bulk.test", "queued", "to", ""),
    ]


def test_unknown_or_doubled_columns_are_refused(db):
    with pytest.raises(ValueError):
        insert_rows(OutgoingRecipient, columns=("nope",), rows=[("x",)])
    with pytest.raises(ValueError):
        insert_rows(
            OutgoingRecipient,
            columns=("address",),
            rows=[("x@bulk.test",)],
            constants={"address": "y@bulk.test"},
        )
    assert OutgoingRecipient.objects.count() == 0
    assert connection.vendor in ("sqlite", "postgresql")


def test_a_field_that_converts_by_value_converts_every_value(db):
    """Only Django's own coercing fields pass values through unconverted once one
    came back unchanged: a field whose conversion depends on the value (here a
    stripping CharField subclass) converts each one."""
    field = OutgoingRecipient._meta.get_field("address")

    class Stripping(type(field)):  # type: ignore[misc]
        def get_db_prep_save(self, value, connection):  # noqa: ANN001, ANN201
            return value.strip()

    converter = bulk._converter(Stripping(max_length=320), connection)
    assert converter("a@x.test") == "a@x.test"
    assert converter(" b@x.test ") == "b@x.test"
    plain = bulk._converter(field, connection)
    assert plain("a@x.test") == "a@x.test" and plain(" b ") == " b "


def test_text_values_that_array_syntax_would_quote_arrive_as_they_are(db):
    """PostgreSQL's arrays are bound in binary form: values that its text array
    syntax quotes or reads specially (braces, quotes, backslashes, commas, the word
    NULL, blanks, the empty string) are stored as given."""
    tricky = ['{"a", b}', "back\\slash", "NULL", "", " padded ", "Grüße\u2028"]
    mail = OutgoingMail.objects.create(
        from_address="a@bulk.test", message_id="<t@bulk.test>", raw=b"x"
    )
    insert_rows(
        OutgoingRecipient,
        columns=("mail_id", "address", "verp_token"),
        rows=[(mail.pk, f"r{n}@bulk.test", v) for n, v in enumerate(tricky)],
    )
    stored = dict(mail.recipients.values_list("address", "verp_token"))
    assert stored == {f"r{n}@bulk.test": v for n, v in enumerate(tricky)}


def test_postgresql_copies_the_rows_with_ids_from_the_sequence(db, monkeypatch):
    """On PostgreSQL the rows go by binary COPY (logged as a statement), their ids
    taken from the table's sequence in row order: a later insert continues it."""
    monkeypatch.setattr(bulk, "MAX_ROWS", 2)
    with CaptureQueriesContext(connection) as queries:
        ids = insert_rows(
            OutgoingMail,
            columns=COLUMNS,
            rows=[values(n, "copy") for n in range(3)],
            constants={"from_address": "a@bulk.test"},
            returning=True,
        )
    copies = [q["sql"] for q in queries if q["sql"].startswith("COPY ")]
    assert len(copies) == (2 if connection.vendor == "postgresql" else 0)
    assert ids == sorted(ids) and len(set(ids)) == 3
    stored = dict(OutgoingMail.objects.filter(pk__in=ids).values_list("pk", "raw"))
    assert [bytes(stored[pk]) for pk in ids] == [values(n, "copy")[1] for n in range(3)]
    later = OutgoingMail.objects.create(
        from_address="a@bulk.test", message_id="<later@bulk.test>", raw=b"x"
    )
    assert later.pk > ids[-1]


def test_a_value_too_long_or_a_missing_parent_is_refused(db):
    """A value longer than its column is refused on PostgreSQL (never cut; SQLite
    keeps it whole, as from bulk_create), and a foreign key to no row fails (by
    the commit at the latest)."""
    mail = OutgoingMail.objects.create(
        from_address="a@bulk.test", message_id="<x@bulk.test>", raw=b"x"
    )
    long = [(mail.pk, "a" * 321)]
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            insert_rows(OutgoingRecipient, columns=("mail_id", "address"), rows=long)
    else:
        with transaction.atomic():
            insert_rows(OutgoingRecipient, columns=("mail_id", "address"), rows=long)
            assert mail.recipients.get().address == "a" * 321
            transaction.set_rollback(True)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(
            OutgoingRecipient,
            columns=("mail_id", "address"),
            rows=[(mail.pk + 1000, "b@bulk.test")],
        )
        connection.check_constraints()  # what the commit checks (deferred keys)
    assert not OutgoingRecipient.objects.exists()


def test_a_table_without_a_sequence_returns_the_keys_it_was_given(db):
    """A primary key that is not automatic (no sequence to take ids from): the
    rows go by INSERT ... RETURNING on PostgreSQL, never by COPY."""
    from mailservers.models import OutboxClaim

    with CaptureQueriesContext(connection) as queries:
        keys = insert_rows(
            OutboxClaim,
            columns=("token", "lease_until"),
            rows=[("t1", WHEN), ("t2", WHEN)],
            returning=True,
        )
    assert keys == ["t1", "t2"]
    assert not [q for q in queries if q["sql"].startswith("COPY ")]
    assert list(
        OutboxClaim.objects.order_by("token").values_list("token", flat=True)
    ) == [
        "t1",
        "t2",
    ]
