"""The tables a mailing writes by the hundred thousand keep only the indexes some
lookup needs (each one more is written for every row; an index of a column that
is NULL in most of them holds only the others), and on PostgreSQL a queued
mail's bytes are compressed with lz4 (a 2 KB mail is just over the size where
PostgreSQL compresses a row; pglz costs several times its CPU)."""

from __future__ import annotations

import pytest
from django.db import connection

from feed.models import Follower, MessageRecipient
from mailservers.models import OutgoingMail, OutgoingRecipient

pytestmark = pytest.mark.django_db


def indexes_of(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {name: c for name, c in found.items() if c["index"] or c["unique"]}


def index_columns(model) -> list[list[str]]:  # noqa: ANN001
    return [c["columns"] for c in indexes_of(model._meta.db_table).values()]


@pytest.mark.parametrize(
    ("model", "columns"),
    [
        (OutgoingMail, ["state", "content_type_id", "server_id"]),
        (OutgoingRecipient, ["mail_id"]),
        (Follower, ["content_type_id"]),
        (Follower.subtypes.through, ["follower_id"]),
    ],
)
def test_no_index_of_their_own_but_each_leads_another(model, columns):
    indexes = index_columns(model)
    for column in columns:
        assert [column] not in indexes, (model, column)
        assert any(len(i) > 1 and i[0] == column for i in indexes), (model, column)


def test_the_message_id_keeps_its_unique_index_and_its_prefix_search():
    """The refusal and password-reset rate limits search mail by Message-ID prefix."""
    indexes = index_columns(OutgoingMail)
    assert indexes.count(["message_id"]) == (
        2 if connection.vendor == "postgresql" else 1
    )


def test_mail_bytes_are_compressed_with_lz4_on_postgresql():
    if connection.vendor != "postgresql":
        assert connection.vendor == "sqlite"  # no per-column compression there
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'"
        )
        supported = cursor.fetchone()[0]
        cursor.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'raw'",
            [OutgoingMail._meta.db_table],
        )
        method = cursor.fetchone()[0]
    assert method == ("l" if supported else "")


@pytest.mark.parametrize("model", [Follower, MessageRecipient])
def test_the_user_index_holds_only_the_rows_that_have_one(model):
    """A mailing's rows are its contacts' (user NULL): only the users' are indexed."""
    indexes = indexes_of(model._meta.db_table)
    assert [c["columns"] for c in indexes.values()].count(["user_id"]) == 1
    name = next(n for n, c in indexes.items() if c["columns"] == ["user_id"])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name]
            )
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
        definition = cursor.fetchone()[0]
    assert "WHERE" in definition and "NOT NULL" in definition.upper(), definition
