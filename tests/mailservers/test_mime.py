"""mailservers.mime: the bytes we send, parsed back with the standard library."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailservers.mime import (
    InvalidAddress,
    MailPart,
    build_message,
    make_message_id,
)

PDF = MailPart("rapport été.pdf", b"%PDF-1.4 " * 50, "application/pdf")
LOGO = MailPart("logo.png", b"\x89PNG\r\n" * 20, "image/png", content_id="logo1")


def build(**overrides) -> bytes:  # noqa: ANN003
    values = {
        "from_addr": ("Alice Example", "alice@example.com"),
        "to": ["Bob <bob@example.org>"],
        "subject": "Hello",
        "text": "Hello Bob",
        "message_id": "<m1@knowlix.test>",
    }
    values.update(overrides)
    return build_message(**values)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_block(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_alternatives_inline_images_and_attachments():
    """Text+HTML alternatives, the cid image related to the HTML, an attachment."""
    raw = build(html='<p>Hi <img src="cid:logo1"></p>', attachments=[PDF, LOGO])
    msg = parse(raw)
    types = [part.get_content_type() for part in msg.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo1>"
    assert image.get_content() == LOGO.content
    assert msg.get_body(("plain",)).get_content().strip() == "Hello Bob"


def test_attachment_name_uses_rfc2231():
    """A non-ASCII file name is written as filename*=utf-8'' and read back intact."""
    raw = build(attachments=[PDF])
    assert b"filename*=utf-8''rapport%20%C3%A9t%C3%A9.pdf" in raw
    [attachment] = parse(raw).iter_attachments()
    assert attachment.get_filename() == "rapport été.pdf"
    assert attachment.get_content() == PDF.content


def test_output_is_seven_bit_with_short_lines():
    """Non-ASCII text is encoded: pure ASCII, no line over 998 octets."""
    raw = build(subject="Réunion ✓", text="Ünïcødé " * 500, html="<p>é</p>" * 300)
    raw.decode("ascii")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert parse(raw)["Subject"] == "Réunion ✓"


@pytest.mark.parametrize(
    "evil",
    [
        "Hi\r\nBcc: victim@example.net",
        "Hi\nBcc: victim@example.net",
        "Hi\rBcc: victim@example.net",
        "Hi\u2028Bcc: victim@example.net",
        "Hi\x85Bcc: victim@example.net",
        "Hi\x00\nBcc: victim@example.net",
    ],
)
def test_header_injection_is_impossible(evil):  # noqa: ANN001
    """CR/LF or any line break in subject, names or extra headers stays on one line."""
    raw = build(
        subject=evil,
        from_addr=(evil, "alice@example.com"),
        to=[(evil, "bob@example.org")],
        extra_headers={"X-Knowlix-Record": evil},
    )
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in header_block(raw))
    assert "victim@example.net" in msg["Subject"]  # kept as text, on the same line
    assert [a.addr_spec for a in msg["To"].addresses] == ["bob@example.org"]


def test_address_with_line_break_cannot_add_recipients():
    """An address smuggling a second address is refused, not split into two."""
    with pytest.raises(InvalidAddress):
        build(to=["bob@example.org\r\nCc: victim@example.net"])
    with pytest.raises(InvalidAddress):
        build(to=["bob@example.org, victim@example.net"])


def test_extra_header_cannot_override_ours():
    """extra_headers may not set From, Bcc or a malformed name."""
    for name in ("From", "bcc", "Bad Name", "X:Y"):
        with pytest.raises(ValueError, match="extra header"):
            build(extra_headers={name: "x"})


def test_threading_and_reply_headers():
    """Message-ID, In-Reply-To, References (deduplicated) and Reply-To are written."""
    raw = build(
        message_id="<new@knowlix.test>",
        in_reply_to="<parent@knowlix.test>",
        references=[
            "<root@knowlix.test>",
            "<parent@knowlix.test>",
            "<root@knowlix.test>",
        ],
        reply_to=["reply+tok123@catchall.test"],
    )
    msg = parse(raw)
    assert msg["Message-ID"] == "<new@knowlix.test>"
    assert msg["In-Reply-To"] == "<parent@knowlix.test>"
    assert msg["References"] == "<root@knowlix.test> <parent@knowlix.test>"
    assert msg["Reply-To"] == "reply+tok123@catchall.test"


def test_malformed_message_id_refused():
    """A Message-ID without angle brackets or domain is refused."""
    with pytest.raises(ValueError, match="Message-ID"):
        build(in_reply_to="not-an-id")


def test_auto_submitted_on_notifications():
    """Notifications carry Auto-Submitted: auto-generated; personal mail does not."""
    assert parse(build(auto_submitted=True))["Auto-Submitted"] == "auto-generated"
    assert parse(build())["Auto-Submitted"] is None


def test_message_ids_are_unique_at_our_domain():
    """make_message_id gives a new id at the given domain each time."""
    ids = {make_message_id("catchall.test") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("<") and i.endswith("@catchall.test>") for i in ids)


def test_message_id_is_repeated_in_x_knowlix_message_id():
    """X-Knowlix-Message-Id carries our Message-ID; extra_headers cannot change it."""
    msg = parse(build(message_id="<ours@knowlix.test>"))
    assert msg["X-Knowlix-Message-Id"] == msg["Message-ID"] == "<ours@knowlix.test>"
    with pytest.raises(ValueError, match="extra header"):
        build(extra_headers={"X-Knowlix-Message-Id": "<forged@knowlix.test>"})
