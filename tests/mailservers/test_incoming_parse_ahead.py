"""The poll parses the next batch in a worker thread while it stores this one
(``_parsed_ahead``): each batch comes with its own parse, in order, and a fetch
that fails hands on the batch fetched before it first (pure, no servers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailservers.errors import TransientError
from mailservers.incoming import RemoteMessage
from mailservers.services import incoming as service
from routing.errors import ParseError
from routing.parsing import ParsedMessage, parse_message
from tests.servers.dovecot_fixtures import make_mail


def _batch(first: int, count: int) -> list[RemoteMessage]:
    return [
        RemoteMessage(key=uid, size=100, raw=make_mail(uid))
        for uid in range(first, first + count)
    ]


def test_each_batch_comes_with_its_own_parse_in_order():
    """Every message of every batch is parsed once, keyed by its UID; an oversize
    message (no bytes) and bytes that are no message are told apart."""
    batches = [_batch(1, 3), _batch(4, 2)]
    batches[1].append(RemoteMessage(key=6, size=10**9, raw=None, headers=b""))
    batches[1].append(RemoteMessage(key=7, size=1, raw=b" "))
    handed = list(service._parsed_ahead(iter(batches)))
    assert [batch for batch, _parsed in handed] == batches
    first, second = (parsed for _batch, parsed in handed)
    assert sorted(first) == [1, 2, 3] and sorted(second) == [4, 5, 7]
    assert all(isinstance(p, ParsedMessage) for p in first.values())
    assert first[2] == parse_message(make_mail(2))
    assert isinstance(second[7], ParseError)


def test_a_failed_fetch_hands_on_the_batch_before_it_first():
    """The second fetch fails: the first batch (fetched and parsed) is still
    handed on to be stored, then the failure is raised."""

    def batches() -> Iterator[list[RemoteMessage]]:
        yield _batch(1, 2)
        raise TransientError("connection lost")

    handed = []
    with pytest.raises(TransientError):
        for batch, parsed in service._parsed_ahead(batches()):
            handed.append((batch, parsed))
    assert len(handed) == 1
    assert sorted(handed[0][1]) == [1, 2]
