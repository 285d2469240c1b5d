"""The queue tables carry no index that another one already covers.

The claim and the send rewrite hundreds of mail and recipient rows at a time, and
every index on a rewritten column is one more write per row (bench/outgoing.py).
An index whose columns begin another index's columns answers no query the longer
one cannot, so it only costs.
"""

from __future__ import annotations

import pytest
from django.db import connection

from mailservers.models import OutgoingMail, OutgoingRecipient

pytestmark = pytest.mark.django_db


def plain_indexes(table: str) -> dict[str, tuple[str, ...]]:
    """Non-unique, non-partial indexes of ``table``: name -> columns, in order."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: tuple(info["columns"])
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        # PostgreSQL's varchar_pattern_ops twin serves LIKE, not equality.
        and not name.endswith("_like")
    }


@pytest.mark.parametrize("model", [OutgoingMail, OutgoingRecipient])
def test_no_index_is_a_prefix_of_another(model: type) -> None:
    indexes = plain_indexes(model._meta.db_table)
    assert indexes  # the introspection found the table's indexes
    covered = [
        (name, columns, other)
        for name, columns in indexes.items()
        for other_name, other in indexes.items()
        if other_name != name and other[: len(columns)] == columns
    ]
    assert covered == []


def test_the_queue_scans_keep_their_indexes() -> None:
    """What the drain, the rate limits and the record pages look up stays indexed."""
    mail = set(plain_indexes(OutgoingMail._meta.db_table).values())
    assert ("state", "next_attempt_at") in mail  # the claim
    assert ("server_id", "sent_at") in mail  # rate limits
    assert ("content_type_id", "object_id") in mail  # a record's mail
    rcpt = set(plain_indexes(OutgoingRecipient._meta.db_table).values())
    assert ("mail_id", "state") in rcpt
