"""Headers safe by construction: hostile text in every header we write, decoded back.

Python 3.11.7 (this machine) has the standard library's encoded-word injection bug
(CVE-2024-6923): these tests fail on the old ``build_message``.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from mailservers import headers
from mailservers.mime import MailPart, build_message
from tests.mailservers.header_checks import (
    BREAKS,
    MIXED,
    QP_CRLF,
    b64_word,
    decoded_forms,
)

EVIL = {
    "literal CRLF": "a\r\nX-Evil: 1",
    "q CRLF": QP_CRLF,
    "lower-case q": "=?UTF-8?Q?a=0d=0aX-Evil:_1?=",
    "b CRLF": b64_word("a\r\nX-Evil: 1"),
    "double-encoded": b64_word(QP_CRLF),
    "triple-encoded": b64_word(b64_word(QP_CRLF)),
    "mixed charsets": MIXED,
    "blank line then body": "=?utf-8?q?x=0D=0A=0D=0APlease_wire_money_to_EVIL?=",
    "U+2028": "=?utf-8?q?a=E2=80=A8X-Evil:_1?=",
    "U+2029 in b": b64_word("a\u2029X-Evil: 1"),
    "NUL": "=?utf-8?q?a=00X-Evil:_1?=",
    "unknown charset": "=?x-evil?q?a=0D=0AX-Evil:_1?=",
    "rfc2231 value": "utf-8''a%0D%0AX-Evil%3A%201",
    "rfc2231 charset in word": "=?utf-8*en?q?a=0D=0AX-Evil:_1?=",
    "UTF-7 lone surrogate": "=?utf-7?q?a+2D0-X-Evil:_1?=",
    "long run": "=?utf-8?q?" + "=C3=A9" * 40 + "=0D=0AX-Evil:_1?=",
}
TOP = ["from", "to", "cc", "reply-to", "subject", "date", "message-id"]


def assert_clean(raw: bytes, *, expected: list[str], body: str) -> None:
    """Only the fields we meant, no line break in any decoded form, body intact."""
    raw.decode("ascii")
    names = headers.written_header_names(raw)
    assert names[: len(expected)] == expected
    assert set(names[len(expected) :]) <= {"mime-version", "content-type"}
    for policy in (email.policy.default, email.policy.compat32):
        msg = email.message_from_bytes(raw, policy=policy)
        assert not msg.defects, msg.defects
        for part in msg.walk():
            assert not any(k.lower().startswith("x-evil") for k in part)
            assert "bcc" not in {k.lower() for k in part}
            for key, value in part.items():
                for form in decoded_forms(str(value)):
                    assert not BREAKS.search(form), (key, form)
            filename = part.get_filename()
            if filename:
                for form in decoded_forms(filename):
                    assert not BREAKS.search(form), form
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == body + "\n"
    for part in msg.walk():  # no injected text made it into any part's content
        if not part.is_multipart():
            assert b"wire money" not in part.get_payload(decode=True).lower()


@pytest.mark.parametrize("evil", list(EVIL.values()), ids=list(EVIL))
def test_hostile_text_in_every_header_stays_in_its_field(evil):
    """Subject, names, custom header and file names carry no break, decoded or not."""
    raw = build_message(
        from_addr=(f"Eve {evil}", "eve@customer.example"),
        to=[(evil, "dana@customer.example")],
        cc=[f'"{evil}" <carl@customer.example>'],
        reply_to=[(evil, "reply+tok@example.com")],
        subject=f"Re: {evil} [TCK-1]",
        text="The body, intact.",
        html="<p>The body</p>",
        message_id="<m1@example.com>",
        attachments=[
            MailPart(f"{evil}.pdf", b"%PDF", "application/pdf"),
            MailPart(f"é {evil}.png", b"PNG", "image/png", content_id=evil),
        ],
        extra_headers={"X-Knowlix-Loop": evil},
    )
    assert_clean(
        raw,
        expected=[*TOP, "x-knowlix-message-id", "x-knowlix-loop"],
        body="The body, intact.",
    )


def test_clean_text_decodes_what_hides_and_keeps_the_words():
    """A double-encoded value shows its text once, on one line, and decodes to itself."""
    text = headers.clean_text(b64_word(QP_CRLF) + " tail")
    assert text == "a X-Evil: 1 tail"
    assert headers.clean_text("=?iso-8859-1?q?caf=E9?= =?utf-8?q?_cr=C3=A8me?=") == (
        "café crème"
    )
    odd = headers.clean_text("1+1=?  and =?broken")
    assert headers.decode_words(odd) == odd
    assert "=?" not in odd


def test_non_ascii_names_and_subjects_round_trip():
    """Encoded by us as UTF-8 words: readers get the text back exactly."""
    raw = build_message(
        from_addr=('Zoë Ünïcødé, "the" boss', "zoe@bücher.example"),
        to=["bob@example.org"],
        subject="Réunion: « budget » ✓ " + "très long " * 20,
        text="x",
        message_id="<m2@example.com>",
        attachments=[MailPart("rapport d'été.pdf", b"%PDF")],
    )
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"].addresses[0].display_name == 'Zoë Ünïcødé, "the" boss'
    assert msg["From"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"
    assert str(msg["Subject"]) == ("Réunion: « budget » ✓ " + "très long " * 20).strip()
    assert next(msg.iter_attachments()).get_filename() == "rapport d'été.pdf"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "address",
    [
        "=?utf-8?q?a=0D=0A?=@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "a@example",
        "ünï@example.com",
        '"q"@example.com',
        "a@-x.example",
    ],
)
def test_odd_addresses_are_refused(address):
    """An address that is not a plain dot-atom at a real domain is never written."""
    with pytest.raises(headers.InvalidAddress):
        headers.make_mailbox("", address)


def test_message_ids_holding_encoded_words_are_never_written():
    """A received Message-ID with an encoded word in it is no Message-ID to us: the
    queue drops it from the thread headers, the builder refuses it."""
    from mailservers.services.outgoing import _valid_msgids

    evil = f"<{QP_CRLF}@customer.example>"
    assert _valid_msgids([evil, "<ok@customer.example>"]) == ["<ok@customer.example>"]
    with pytest.raises(ValueError, match="Message-ID"):
        build_message(
            from_addr="a@example.com",
            subject="x",
            text="x",
            message_id="<m@example.com>",
            in_reply_to=evil,
        )
