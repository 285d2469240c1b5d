"""A fan-out builds its MIME once: each one-recipient copy is the template with its
own To and Message-ID lines, byte for byte what a full build gives."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re

import pytest

from knowlix import params
from knowlix.html import html_to_text
from mailservers import mime
from mailservers.models import OutgoingMail
from mailservers.services import outgoing
from mailservers.services.outgoing import MailCopy, MailRecipient, queue_mail_copies

pytestmark = pytest.mark.django_db
PLACEHOLDER = "<knowlix-copy@placeholder.invalid>"
BOUNDARY = re.compile(rb'boundary="([^"]+)"')
NAMES = ['Jörg "the" Müller, Sales', "Dana", "", "A very long name " * 6]


def test_spliced_copies_equal_full_builds(db):
    """Names with quotes, commas, non-ASCII or folding: the same bytes as a build."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    body = f"<p>Hello, mind the text {PLACEHOLDER} and To: x</p>"
    queued = queue_mail_copies(
        from_address="alice@catchall.test",
        from_name="Alice",
        copies=[
            MailCopy([MailRecipient(f"c{n}@customer{n}.example", name)])
            for n, name in enumerate(NAMES)
        ],
        subject="Your order",
        body_html=body,
        references=["<root@catchall.test>"],
        in_reply_to="<root@catchall.test>",
        send_now=False,
    )
    assert len(queued.mails) == len(NAMES)
    for n, (mail, name) in enumerate(zip(queued.mails, NAMES, strict=True)):
        raw = bytes(mail.raw)
        date = email.utils.parsedate_to_datetime(
            email.message_from_bytes(raw, policy=email.policy.default)["Date"]
        )
        expected = mime.build_message(
            from_addr=("Alice", "alice@catchall.test"),
            to=[(name, f"c{n}@customer{n}.example")],
            subject="Your order",
            text=mime_text(body),
            html=body,
            message_id=mail.message_id,
            in_reply_to="<root@catchall.test>",
            references=["<root@catchall.test>"],
            date=date,
        )
        assert same_boundaries(raw) == same_boundaries(expected)
        assert PLACEHOLDER.encode() in raw.split(b"\r\n\r\n", 1)[1]  # body untouched
        assert b"placeholder.invalid" not in raw.split(b"\r\n\r\n", 1)[0]


def mime_text(html: str) -> str:
    return html_to_text(html)


def same_boundaries(raw: bytes) -> bytes:
    """The bytes with each MIME boundary (random per build) named by its order."""
    for n, boundary in enumerate(dict.fromkeys(BOUNDARY.findall(raw))):
        raw = raw.replace(boundary, b"boundary-%d" % n)
    return raw


def test_large_fan_out_is_inserted_in_chunks(db, monkeypatch):
    """Beyond INSERT_CHUNK copies, mails are inserted a chunk at a time and come back
    as ids only (no bytes kept); every row holds its own, addressed to its
    recipient, with its own VERP token and the shared values of the call."""
    monkeypatch.setattr(outgoing, "INSERT_CHUNK", 2)
    queued = queue_mail_copies(
        from_address="alice@catchall.test",
        copies=[MailCopy([MailRecipient(f"c{n}@x{n}.example")]) for n in range(5)],
        subject="Hi",
        body_text="Hello",
        send_now=False,
    )
    assert queued.mails == []
    mails = list(OutgoingMail.objects.order_by("id"))
    assert queued.mail_ids == [mail.pk for mail in mails]
    assert len(mails) == 5
    tokens = set()
    for n, mail in enumerate(mails):
        raw = bytes(mail.raw)
        assert f"To: c{n}@x{n}.example".encode() in raw
        assert mail.size == len(raw) and not mail.needs_smtputf8
        assert (mail.subject, mail.from_address) == ("Hi", "alice@catchall.test")
        assert mail.state == OutgoingMail.State.QUEUED and mail.attempts == 0
        recipient = mail.recipients.get()
        assert recipient.address == f"c{n}@x{n}.example"
        assert recipient.state == recipient.State.QUEUED
        assert re.fullmatch(r"[0-9a-f]{20}", recipient.verp_token)
        tokens.add(recipient.verp_token)
    assert len(tokens) == 5
