"""Hostile encoded words in received mail, through routing to the SMTP sink.

Subject, From display name, References and attachment names (RFC 2047 in a
quoted name, RFC 2231 ``filename*``) decoding to CR/LF, double-encoded and in mixed charsets, arrive
on a reply, on a record an alias creates, and to an unknown address. Every mail
Knowlix then sends (notifications, replies, refusals) is read back from the sink:
only the header fields we write, no line break in any decoded form, body intact.
"""

from __future__ import annotations

import pytest

from feed import services
from feed.attachments import AttachmentInput
from feed.models import Message
from knowlix.models import Ticket
from mailservers.services.outgoing import process_outbox
from tests.mailservers.header_checks import (
    DOUBLE,
    MIXED,
    QP_CRLF,
    assert_headers_ours,
    b64_word,
)

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4 the attachment bytes"
ATTACKS = {
    "q CRLF": (QP_CRLF, "utf-8''a%0D%0AX-Evil%3A%201.pdf"),
    "double-encoded": (DOUBLE, "utf-8''%3D%3Futf-8%3Fq%3Fa%3D0D%3D0AX-Evil%3A_1%3F%3D"),
    "mixed charsets": (MIXED, "iso-8859-1'fr'caf%E9%0D%0ABcc%3A%20e%40evil.example"),
    "U+2028": (b64_word("a\u2028X-Evil: 1"), "utf-8''a%E2%80%A8X-Evil%3A%201.pdf"),
    # UTF-7 decodes "+2D0-" to a lone surrogate, which no mail can carry
    "UTF-7 surrogate": (b64_word("=?utf-7?q?a+2D0-b?="), "utf-7''a%2B2D0-b.pdf"),
}


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


def hostile_mail(*, to: str, evil: str, filename_2231: str, msgid: str) -> bytes:
    """A multipart mail with ``evil`` in Subject, From name and a quoted file name,
    and ``filename_2231`` as the RFC 2231 name of a second attachment."""
    lines = [
        f'From: "{evil}" <dana@customer.example>',
        f"To: {to}",
        f"Subject: Re: {evil} printer",
        f"Message-ID: <{msgid}@customer.example>",
        f"References: <{QP_CRLF}@evil.example> <earlier-{msgid}@customer.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "The printer is on fire.",
        "--b1",
        f'Content-Type: application/pdf; name="{evil}.pdf"',
        f'Content-Disposition: attachment; filename="{evil}.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0xLjQgdGhlIGF0dGFjaG1lbnQgYnl0ZXM=",
        "--b1",
        "Content-Type: application/pdf",
        f"Content-Disposition: attachment; filename*={filename_2231}",
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0xLjQgdGhlIGF0dGFjaG1lbnQgYnl0ZXM=",
        "--b1--",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1")


def assert_all_sent_mail_clean(smtp, *, expect: int) -> list:
    process_outbox()
    received = list(smtp.received)
    assert len(received) >= expect
    return [assert_headers_ours(r.raw) for r in received]


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_reply_on_record_notifies_and_answers_cleanly(
    attack, aliases, route, ticket, alice, bob, smtp
):
    """Reply token → notification to bob, then alice's reply with the files."""
    from knowlix.users import get_profile

    evil, name_2231 = ATTACKS[attack]
    profile = get_profile(bob)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save(update_fields=["notify_by"])
    services.follow(record=ticket, user=bob)
    raw = hostile_mail(
        to=f"reply+{ticket.reply_token}@example.com",
        evil=evil,
        filename_2231=name_2231,
        msgid="reply-1",
    )
    result = route(raw)
    assert result.outcome == "routed", result.reason
    incoming = Message.objects.get(pk=result.routes[0].message)
    assert "\n" not in incoming.subject and "\r" not in incoming.email_from
    files = [
        AttachmentInput(filename=a.filename, content=a.blob.file.read())
        for a in incoming.attachments.all()
    ]
    assert len(files) == 2
    services.post_message(
        record=ticket,
        kind="email",
        author=alice,
        subject=f"Re: {incoming.subject}",
        body_html="<p>We are on it.</p>",
        parent=incoming,
        attachments=files,
    )
    mails = assert_all_sent_mail_clean(smtp, expect=3)
    bodies = {
        (r.rcpt_tos[0], m.get_body(("plain",)).get_content()): m
        for r, m in zip(smtp.received, mails, strict=True)
    }
    assert any(
        rcpt == "bob@example.com" and "The printer is on fire." in text
        for rcpt, text in bodies
    )
    [answer] = [m for (rcpt, _), m in bodies.items() if rcpt == "dana@customer.example"]
    assert "We are on it." in answer.get_body(("plain",)).get_content()
    assert [p.get_content() for p in answer.iter_attachments()] == [PDF, PDF]


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_alias_created_record_mails_cleanly(attack, aliases, route, alice, smtp):
    """helpdesk@ creates a ticket titled by the hostile subject; mail from it is clean."""
    evil, name_2231 = ATTACKS[attack]
    result = route(
        hostile_mail(
            to="helpdesk@example.com", evil=evil, filename_2231=name_2231, msgid="a1"
        )
    )
    assert result.outcome == "routed", result.reason
    ticket = Ticket.objects.get()
    assert "\n" not in ticket.subject and "\u2028" not in ticket.subject
    assert "\n" not in ticket.contact.name
    services.post_message(
        record=ticket, kind="email", author=alice, body_html="<p>Received.</p>"
    )
    [mail] = assert_all_sent_mail_clean(smtp, expect=1)
    assert mail["To"].addresses[0].addr_spec == "dana@customer.example"
    assert "Received." in mail.get_body(("plain",)).get_content()


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_refusal_to_unknown_address_is_clean(attack, catchall, route, smtp):
    """The polite refusal quotes the subject as text, never as header fields."""
    evil, name_2231 = ATTACKS[attack]
    result = route(
        hostile_mail(
            to="nobody-here@example.com", evil=evil, filename_2231=name_2231, msgid="u1"
        )
    )
    assert result.outcome == "refused"
    [mail] = assert_all_sent_mail_clean(smtp, expect=1)
    assert smtp.received[0].rcpt_tos == ["dana@customer.example"]
    assert str(mail["Subject"]).startswith("Undeliverable: Re: ")
    assert "could not be delivered" in mail.get_body(("plain",)).get_content()


def test_a_utf7_surrogate_never_stops_a_polled_batch(aliases, ticket, smtp):
    """A file name in UTF-7 decoding to a lone surrogate made the parser raise, so
    the poller's whole batch failed on every poll: now each mail is routed."""
    from routing.services import route_incoming_messages

    evil, name_2231 = ATTACKS["UTF-7 surrogate"]
    hostile = hostile_mail(
        to="helpdesk@example.com", evil=evil, filename_2231=name_2231, msgid="u7"
    )
    plain = hostile_mail(
        to="helpdesk@example.com", evil="Plain", filename_2231="x.pdf", msgid="p1"
    )
    results = route_incoming_messages(raws=[hostile, plain], source="imap:1")
    assert [r.outcome for r in results] == ["routed", "routed"]
    message = Message.objects.get(pk=results[0].routes[0].message)
    assert "\ufffd" in message.subject
    assert len(message.attachments.all()) == 2
    assert_all_sent_mail_clean(smtp, expect=0)
