"""``feed.recipients.parse_addresses`` is ``getaddresses`` of the whole list, cached
(no database)."""

from __future__ import annotations

from email.utils import getaddresses

import pytest

from feed.recipients import parse_addresses


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["support@acme.example"],
        ['"Doe, Jane" <jane@x.example>', "bob@y.example"],
        ['"unclosed <a@x.example>', "b@y.example"],  # parsed joined, not apart
        ["", "not an address"],
        ["x@y.example" * 300],  # too long to cache
    ],
)
def test_pairs_are_those_of_getaddresses_every_time(values):
    expected = getaddresses(list(values))
    assert parse_addresses(values) == expected
    assert parse_addresses(tuple(values)) == expected  # from the cache
