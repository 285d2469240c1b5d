"""Pure parsing tests: real .eml bytes in, a ParsedMessage out (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.errors import ParseError
from routing.parsing import parse_message

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = sorted((DATA / "corpus").glob("*.eml"))


def parse(name: str):
    return parse_message((DATA / "corpus" / name).read_bytes())


def test_corpus_is_large_enough():
    """The malformed/exotic corpus holds at least 40 messages."""
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_parses_or_raises_parse_error(path):
    """Every corpus message parses to clean text or raises ParseError, nothing else."""
    try:
        parsed = parse_message(path.read_bytes())
    except ParseError:
        return
    for text in (parsed.subject, parsed.body_text, parsed.body_html, parsed.from_name):
        text.encode("utf-8")  # no lone surrogates
        assert "\x00" not in text
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")


def test_latin1_encoded_subject_and_body():
    """RFC 2047 Latin-1 words and a quoted-printable Latin-1 body decode."""
    parsed = parse("latin1_rfc2047_subject.eml")
    assert parsed.subject == "Problème de connexion à l'application"
    assert parsed.from_name == "André Dupré"
    assert "à me connecter" in parsed.body_text


def test_koi8r_subject_sender_and_body():
    """KOI8-R encoded words and an 8-bit KOI8-R body decode."""
    parsed = parse("koi8r_subject_body.eml")
    assert parsed.subject.startswith("Привет")
    assert "Хотим заказать" in parsed.body_text


def test_windows_1252_punctuation():
    """windows-1252 smart quotes, dashes and the euro sign survive."""
    parsed = parse("cp1252_smart_quotes.eml")
    assert parsed.subject == "“Quoted” – and €uros"
    assert "It’s “broken” – costs 10 €" in parsed.body_text


def test_mislabelled_and_unknown_charsets_fall_back():
    """UTF-8 labelled ASCII, an unknown charset and no charset all read correctly."""
    assert "Zürich café €" in parse("wrong_charset_ascii_is_utf8.eml").body_text
    unknown = parse("unknown_charset.eml")
    assert unknown.subject.startswith("Jérôme")
    assert unknown.body_text.startswith("Jérôme")
    assert "Grüße aus Köln" in parse("missing_charset_8bit.eml").body_text
    assert parse("raw_8bit_headers.eml").subject == "Straße und Größe"


def test_rfc2231_and_rfc2047_file_names():
    """File names in RFC 2231 (Latin-1, KOI8-R continuations) and RFC 2047 decode."""
    assert parse("rfc2231_filename_latin1.eml").attachments[0].filename == (
        "résumé André.pdf"
    )
    koi8 = parse("rfc2231_filename_koi8r_continuation.eml").attachments[0]
    assert koi8.filename == "Чек номер 1.png"
    assert koi8.content.startswith(b"\x89PNG")
    cp1252 = parse("rfc2047_filename_cp1252.eml").attachments[0]
    assert cp1252.filename == "reçu – taxi.txt"


def test_missing_message_id_gets_a_stable_one():
    """Without Message-ID the id derives from the bytes; a missing Date is None."""
    first = parse("missing_message_id_and_date.eml")
    again = parse("missing_message_id_and_date.eml")
    assert not first.has_message_id
    assert first.message_id == again.message_id
    assert first.date is None


def test_malformed_from_keeps_the_text_without_an_address():
    """A From without any address keeps its text as a name and no address."""
    parsed = parse("malformed_from.eml")
    assert parsed.from_address == ""
    assert "Broken Person" in parsed.from_name


def test_bodies_html_only_text_only_and_alternative():
    """HTML-only, text-only and alternative bodies land in the right fields."""
    html_only = parse("html_only.eml")
    assert "<b>team</b>" in html_only.body_html and html_only.body_text == ""
    text_only = parse("text_only.eml")
    assert "<tag>" in text_only.body_text and text_only.body_html == ""
    alt = parse("alternative.eml")
    assert alt.body_text.strip() == "Plain version."
    assert "<em>version</em>" in alt.body_html


def test_cid_image_is_an_inline_attachment():
    """A multipart/related image keeps its Content-ID for cid: references."""
    parsed = parse("related_cid_image.eml")
    (image,) = parsed.attachments
    assert image.content_id == "shot1@client.example.org"
    assert image.is_inline
    assert 'src="cid:shot1@client.example.org"' in parsed.body_html
    assert parsed.body_text.strip() == "See the screenshot."


def test_signed_and_forwarded_messages():
    """multipart/signed keeps its text; message/rfc822 becomes an .eml attachment."""
    signed = parse("multipart_signed_pgp.eml")
    assert signed.body_text.strip() == "This text is signed."
    assert signed.attachments[0].filename == "signature.asc"
    fwd = parse("attached_rfc822.eml")
    (inner,) = fwd.attachments
    assert inner.content_type == "message/rfc822"
    assert inner.filename == "the original problèm.eml"
    assert b"<inner-1@elsewhere.example.net>" in inner.content


def test_broken_mime_degrades_gracefully():
    """Unclosed boundaries, missing boundaries and bad base64 still give text."""
    broken = parse("broken_boundary.eml")
    assert "First part" in broken.body_text
    assert "CloseBoundaryNotFoundDefect" in broken.defects
    assert "text" in parse("multipart_no_boundary.eml").body_text
    assert "Hello world" in parse("bad_base64.eml").body_text


def test_deep_nesting_is_kept_or_refused():
    """40 levels keep the deep part as an attachment; 3,000 levels raise ParseError."""
    parsed = parse("gen_nested_40.eml")
    assert parsed.attachments and b"innermost text" in parsed.attachments[0].content
    with pytest.raises(ParseError):
        parse("gen_nested_3000.eml")


def test_not_a_message_raises_parse_error():
    """Empty input and random bytes are not messages."""
    with pytest.raises(ParseError):
        parse_message(b"")
    with pytest.raises(ParseError):
        parse("gen_binary_noise.eml")


def test_rfc3464_bounce_details():
    """A DSN yields the failed address, status, diagnostic and original Message-ID."""
    bounce = parse("dsn_bounce_rfc3464.eml").bounce
    assert bounce.detected
    assert bounce.failed_recipients == ["gone@remote.example.net"]
    assert bounce.original_message_id == "<original-dsn-1@example.com>"
    assert bounce.status == "5.1.1"
    assert "User unknown" in bounce.reason


def test_exim_bounce_with_x_failed_recipients():
    """X-Failed-Recipients and a quoted Message-ID identify an Exim bounce."""
    bounce = parse("exim_x_failed_recipients.eml").bounce
    assert bounce.detected
    assert bounce.failed_recipients == ["nobody@remote.example.net"]
    assert bounce.original_message_id == "<original-exim-1@example.com>"


def test_auto_submitted_detection():
    """Auto-replies are flagged; a person's mail is not."""
    assert parse("auto_reply_out_of_office.eml").is_auto_submitted
    assert parse("dsn_bounce_rfc3464.eml").is_auto_submitted
    assert not parse("text_only.eml").is_auto_submitted


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Auto-Response-Suppress: OOF",
        "List-Id: <news.example.org>",
        "Return-Path: <>",
    ],
)
def test_each_auto_submitted_signal(header):
    """Each header that marks machine-generated mail is recognised."""
    raw = f"From: a@x.example\nTo: b@y.example\n{header}\nSubject: s\n\nb\n".encode()
    assert parse_message(raw).is_auto_submitted


def test_auto_submitted_no_is_a_person():
    """``Auto-Submitted: no`` is explicitly not automatic."""
    raw = b"From: a@x.example\nAuto-Submitted: no\nSubject: s\n\nb\n"
    assert not parse_message(raw).is_auto_submitted


def test_thread_headers_and_subject_tags():
    """In-Reply-To comes first, then References newest first; tags are read."""
    raw = (
        b"From: a@x.example\nTo: b@y.example\nMessage-ID: <m3@x>\n"
        b"In-Reply-To: <m2@x>\nReferences: <m1@x> <m2@x>\n"
        b"Subject: Re: [TCK-42] printer\n\nb\n"
    )
    parsed = parse_message(raw)
    assert parsed.thread_ids == ["<m2@x>", "<m1@x>"]
    assert parsed.subject_tags == [("TCK", 42)]
    bare = parse("message_id_without_brackets.eml")
    assert bare.message_id == "<bare-id-1@client.example.org>"
    assert bare.in_reply_to == ["<bare-parent@example.com>"]


def test_references_are_capped_to_the_last_32():
    """Only the last 32 References are kept."""
    parsed = parse("gen_references_200.eml")
    assert len(parsed.references) == 32
    assert parsed.references[-1] == "<ref-199@elsewhere.example>"


def test_recipients_include_delivery_headers_and_groups():
    """Delivered-To and group-syntax members are all recipients."""
    parsed = parse("group_syntax_recipients.eml")
    assert parsed.recipients[0] == "helpdesk@example.com"
    assert {"one@client.example.org", "two@client.example.org"} <= set(
        parsed.recipients
    )


def test_authentication_results_are_parsed():
    """SPF/DKIM/DMARC verdicts are read per authserv-id."""
    raw = (
        b"From: a@x.example\nAuthentication-Results: mx.example.com;\n"
        b" spf=fail smtp.mailfrom=x.example; dkim=none (no sig);\n dmarc=fail\n"
        b"Subject: s\n\nb\n"
    )
    (verdict,) = parse_message(raw).auth_verdicts
    assert verdict.authserv_id == "mx.example.com"
    assert verdict.results == {"spf": "fail", "dkim": "none", "dmarc": "fail"}
    assert verdict.failed


def test_control_characters_never_reach_text():
    """NUL bytes are dropped and encoded CR LF in a subject become a space."""
    assert "\x00" not in parse("nul_bytes.eml").body_text
    subject = parse("newline_in_encoded_subject.eml").subject
    assert "\n" not in subject and "\r" not in subject


def test_long_and_repeated_address_headers_parse_the_same():
    """Address values are parsed once each (short ones are cached); a long To with
    300 people is parsed in full, and a repeated value gives the same result."""
    people = ", ".join(f"Person {n} <p{n}@Example.COM>" for n in range(300))
    raw = (
        f"From: A <a@x.example>\r\nTo: {people}\r\nCc: B <B@y.example>\r\n"
        "Subject: s\r\n\r\nbody\r\n"
    ).encode()
    first, again = parse_message(raw), parse_message(raw)
    assert len(first.to) == 300
    assert first.to[299] == ("Person 299", "p299@example.com")
    assert first.recipients_cased[0] == "p0@Example.COM"
    assert (again.to, again.cc, again.recipients) == (
        first.to,
        first.cc,
        first.recipients,
    )
    assert again.cc == [("B", "b@y.example")]
