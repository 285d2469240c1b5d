"""Header values with nothing to decode are read without the modern parser: the
text, Message-ID and date are the ones the modern parser gives (pure, no database)."""

from __future__ import annotations

import email.policy
import random

import pytest

from mailservers import headers
from routing.parsing import _parse_date, normalize_message_id, parse_message
from routing.text import MAX_HEADER_CHARS, clean_text, decode_header_text

# ASCII with what the modern parser treats specially: comments, quotes,
# backslashes, tabs, runs of blanks, controls, specials.
ALPHABET = [chr(c) for c in range(32, 127)] + ["\t", "  ", "(", ")", '"', "\\", "\x01"]


MESSAGE_IDS = (
    "<req-1@client7.example>",
    "  <a.b+c@d-e.example>\t",
    "<x@y>",
    "<a@b@c>",  # two @: the modern parser's reading is kept
    "<a(comment)@b>",
    "<=?utf-8?q?a?=@b>",
    "no-brackets@example.com",
)
DATES = (
    "Wed, 25 Nov 2026 10:00:00 +0000",
    "25 Nov 2026 10:00:00 -0000",
    "Wed, 25 Nov 2026 10:00 +0530",
    "Wed,  1 Jan 1969 00:00:00 GMT",
    "Tue, 32 Nov 2026 10:00:00 +0000",
    "yesterday",
    "Wed, 25 Nov 2026 10:00:00 +0100 (CET)",
)


def _modern(name: str, value: str) -> str:
    return str(email.policy.default.header_factory(name, value))


@pytest.mark.parametrize("name", ["Subject", "X-Knowlix-Loop", "In-Reply-To"])
def test_plain_unstructured_value_reads_as_the_modern_parser_reads_it(name):
    """Random ASCII values without encoded words: same text either way."""
    rng = random.Random(name)
    for _ in range(3000):
        value = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        if "=?" in value:
            continue
        line = clean_text("".join(value.splitlines()))
        expected = headers.clean_text(
            clean_text(_modern(name, line)), limit=MAX_HEADER_CHARS
        )
        assert decode_header_text(name, value) == expected


@pytest.mark.parametrize("value", MESSAGE_IDS)
def test_message_id_is_the_one_decoding_gives(value):
    """The Message-ID read directly equals normalize_message_id(decoded value)."""
    raw = b"From: a@b.example\r\nMessage-ID: " + value.encode() + b"\r\n\r\nHi\r\n"
    expected = normalize_message_id(decode_header_text("Message-ID", value))
    parsed = parse_message(raw)
    assert parsed.has_message_id == bool(expected)
    if expected:
        assert parsed.message_id == expected


@pytest.mark.parametrize("value", DATES)
def test_date_is_the_one_decoding_gives(value):
    """The Date read directly is the one read from the decoded value."""
    raw = b"From: a@b.example\r\nDate: " + value.encode() + b"\r\n\r\nHi\r\n"
    expected = _parse_date(decode_header_text("Date", value))
    assert parse_message(raw).date == expected
