"""A copy's own lines (a mailing's unsubscribe link): header fields written safely,
the link put into every body part in its own transfer encoding. No database."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailservers import mime
from mailservers.personalize import CopyLines, Personalizer

KEY = "knowlix-unsubscribe-link-placeholder"
URL = "https://crm.example.com/unsubscribe/YzBAYWNtZS5leGFtcGxl.1:sig_-x/"
LINES = CopyLines(
    headers=[
        ("List-Unsubscribe", f"<{URL}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ],
    values=[(KEY, URL)],
)


def build(text: str, *, attach: bool = False) -> bytes:
    parts = [mime.MailPart("notes.txt", f"keep {KEY}".encode(), "text/plain")]
    return mime.build_message(
        from_addr=("Shop", "news@shop.example"),
        to=[("Dana", "dana@customer.example")],
        subject="News",
        text=f"{text}\n--\nUnsubscribe: {KEY}\n",
        html=f'<p>{text}</p><p><a href="{KEY}">Unsubscribe</a></p>',
        message_id="<knowlix.a@catchall.test>",
        attachments=parts if attach else (),
    )


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Our spring collection is in.", "7bit"),
        ("A line far too long to stay seven bit " * 5, "quoted-printable"),
        ("Привет всем, новая коллекция уже в салоне. " * 5, "base64"),
    ],
)
def test_each_body_part_gets_the_link_in_its_own_encoding(text, encoding):
    """Text and HTML hold the link once decoded, in the encoding they were built in;
    the headers come before the body, each on its own line."""
    raw = build(text)
    out = Personalizer().apply(raw, LINES)
    mail = email.message_from_bytes(out, policy=email.policy.default)
    leaves = [p for p in mail.walk() if not p.is_multipart()]
    # The text part in the encoding named; HTML, one long line, may need another.
    assert leaves[0]["Content-Transfer-Encoding"] == encoding and len(leaves) == 2
    for part in leaves:
        body = part.get_content()
        assert URL in body and KEY not in body
        assert text.split()[0] in body
    assert mail["List-Unsubscribe"] == f"<{URL}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["To"] == "Dana <dana@customer.example>"
    assert all(len(line) <= 998 for line in out.split(b"\r\n"))


def test_an_attachment_is_left_as_it_is():
    """Only the text and HTML alternatives are filled in; a file holding the same
    word keeps it (an attachment is the sender's, byte for byte)."""
    out = Personalizer().apply(build("Hello", attach=True), LINES)
    mail = email.message_from_bytes(out, policy=email.policy.default)
    attachment = next(mail.iter_attachments())
    assert attachment.get_content() == f"keep {KEY}"


def test_copies_of_one_body_read_its_layout_once_and_differ_only_in_the_link():
    """Two copies: the same bytes but for their links."""
    raw = build("Hello")
    personalizer = Personalizer()
    other = URL.replace("YzBA", "ZGFu")
    first = personalizer.apply(raw, LINES)
    second = personalizer.apply(
        raw,
        CopyLines(headers=[("List-Unsubscribe", f"<{other}>")], values=[(KEY, other)]),
    )
    for out, link in ((first, URL), (second, other)):
        mail = email.message_from_bytes(out, policy=email.policy.default)
        assert mail["List-Unsubscribe"] == f"<{link}>"
        leaves = [p.get_content() for p in mail.walk() if not p.is_multipart()]
        assert all(link in body and KEY not in body for body in leaves)
    assert first.replace(URL.encode(), b"") != first
    assert len(personalizer._layouts) == 1


@pytest.mark.parametrize(
    "value",
    [
        "<https://x.example/u/>\r\nBcc: victim@example.com",
        "<https://x.example/u/>\nX-Evil: 1",
        "=?utf-8?q?a=0D=0AX-Evil:_1?=",
        "<https://x.example/ü/>",
    ],
)
def test_a_header_value_that_could_break_a_line_is_refused(value):
    """CR, LF, an encoded word that decodes to them, non-ASCII: refused before any
    mail is built."""
    with pytest.raises(ValueError):
        CopyLines(headers=[("List-Unsubscribe", value)])


@pytest.mark.parametrize("name", ["To", "Bcc", "Content-Type", "Bad Name", "X:Y"])
def test_a_copy_cannot_set_our_own_or_malformed_fields(name):
    """Addresses, ids and MIME fields are the builder's; names must be names."""
    with pytest.raises(ValueError):
        CopyLines(headers=[(name, "x")])


def test_a_body_value_must_be_one_line_of_ascii():
    """A value never changes a part's encoding nor adds a line."""
    with pytest.raises(ValueError):
        CopyLines(values=[(KEY, "https://x.example/\r\n<script>")])
    with pytest.raises(ValueError):
        CopyLines(values=[(KEY, "https://bücher.example/")])


@pytest.mark.parametrize(
    "text",
    [
        "A line far too long to stay seven bit " * 5,
        "Tabs\tand trailing spaces   \nnon-ASCII: café, naïve = equals " * 4,
        f"The link inline, far along a long line: {'x' * 70} {KEY} {'y' * 90}",
    ],
)
def test_a_quoted_printable_part_is_spliced_as_a_full_encode_would_write_it(
    text, monkeypatch
):
    """The lines without the placeholder are encoded once per body: each copy's
    bytes are those of encoding the whole part again (the path it took before)."""
    from mailservers import personalize

    raw = build(text)
    url2 = URL.replace("sig", "other")
    other = CopyLines(values=[(KEY, url2)], headers=LINES.headers)
    spliced = Personalizer()
    fast = [spliced.apply(raw, LINES), spliced.apply(raw, other)]
    layout = next(iter(spliced._layouts.values())) or []
    assert any(part.pieces for part in layout)  # the splice was taken

    monkeypatch.setattr(personalize, "_qp_pieces", lambda content, keys: ())
    whole = Personalizer()
    assert fast == [whole.apply(raw, LINES), whole.apply(raw, other)]
    mail = email.message_from_bytes(fast[1], policy=email.policy.default)
    leaves = [p for p in mail.walk() if not p.is_multipart()]
    assert any(p["Content-Transfer-Encoding"] == "quoted-printable" for p in leaves)
    assert all(url2 in p.get_content() and KEY not in p.get_content() for p in leaves)


def test_a_quoted_printable_part_is_cut_into_a_few_pieces():
    """The lines without the placeholder are joined: a copy goes through the few
    pieces around the placeholder's line, not through every line of the part."""
    text = "\n".join(f"Line {n} of our spring collection, é." for n in range(30))
    raw = build(text)
    personalizer = Personalizer()
    out = personalizer.apply(raw, LINES)
    layout = next(iter(personalizer._layouts.values())) or []
    spliced = [part for part in layout if part.pieces]
    assert spliced and all(len(part.pieces) <= 3 for part in spliced)
    mail = email.message_from_bytes(out, policy=email.policy.default)
    leaves = [p.get_content() for p in mail.walk() if not p.is_multipart()]
    assert all(URL in body and "Line 29 of" in body for body in leaves)


def test_each_copy_gets_its_own_header_values_written_as_a_fresh_block_would():
    """A field whose value repeats from copy to copy is written once, the others
    for each copy: the bytes are those of a new Personalizer for each copy."""
    raw = build("Hello")
    urls = [URL, URL.replace("YzBA", "ZGFu"), URL]
    copies = [
        CopyLines(
            headers=[
                ("List-Unsubscribe", f"<{url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ],
            values=[(KEY, url)],
        )
        for url in urls
    ]
    shared = Personalizer()
    outs = [shared.apply(raw, lines) for lines in copies]
    assert outs == [Personalizer().apply(raw, lines) for lines in copies]
    for out, url in zip(outs, urls, strict=True):
        mail = email.message_from_bytes(out, policy=email.policy.default)
        assert mail["List-Unsubscribe"] == f"<{url}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert outs[0] == outs[2] != outs[1]
    assert shared._last_lines["List-Unsubscribe-Post"][0] == (
        "List-Unsubscribe=One-Click"
    )
