"""Mail of feed messages through the real outgoing queue and a loopback SMTP server."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from feed import services
from feed.attachments import AttachmentInput
from feed.models import MessageRecipient
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import mark_recipient_bounced, process_outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


def panel_html(client, user, record):
    client.force_login(user)
    ct = ContentType.objects.get_for_model(record)
    return client.get(reverse("feed:panel", args=[ct.pk, record.pk])).content.decode()


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_email_reaches_contact_with_threading_and_files(client, alice, ticket, smtp):
    """The customer receives the body, the file, our Message-ID and reply address."""
    message = services.post_message(
        record=ticket,
        kind="email",
        author=alice,
        subject="Your printer",
        body_html="<p>We are <b>on it</b>.</p>",
        attachments=[AttachmentInput(filename="report.pdf", content=b"%PDF-1.4 r")],
    )
    process_outbox()
    (received,) = smtp.received
    assert received.rcpt_tos == ["dana@customer.example"]
    mail = parse(received.raw)
    assert mail["Message-ID"] == message.message_id
    assert mail["Subject"] == f"[TCK-{ticket.pk}] Your printer"
    assert f"reply+{ticket.reply_token}@" in mail["Reply-To"]
    html = mail.get_body(("html",)).get_content()
    assert "<b>on it</b>" in html
    (part,) = list(mail.iter_attachments())
    assert part.get_filename() == "report.pdf"
    assert part.get_content() == b"%PDF-1.4 r"
    row = OutgoingRecipient.objects.get()
    assert row.state == OutgoingRecipient.State.SENT
    assert row.message_recipient.message == message
    assert 'badge badge-ok">sent<' in panel_html(client, alice, ticket)


def test_note_mails_only_colleagues_who_prefer_email(
    ticket, alice, bob, prefers_email, smtp
):
    """A note reaches bob (prefers email) as an auto-submitted mail; never Dana."""
    prefers_email(bob)
    services.follow(record=ticket, user=bob)
    services.post_message(
        record=ticket, kind="note", author=alice, body_html="<p>margin is 40%</p>"
    )
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["bob@example.com"]]
    mail = parse(smtp.received[0].raw)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "margin is 40%" in mail.get_body(("plain",)).get_content()
    assert all(b"dana@customer.example" not in r.raw for r in smtp.received)


def test_refused_recipient_shows_reason_in_feed(client, alice, ticket, smtp):
    """A 5xx for the customer's address is shown beside them, with the reason."""
    smtp.fail_rcpt("dana@customer.example", 550, "5.1.1 mailbox unavailable")
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    row = OutgoingRecipient.objects.get()
    assert row.state == OutgoingRecipient.State.FAILED
    html = panel_html(client, alice, ticket)
    assert 'badge badge-err">failed<' in html
    assert "mailbox unavailable" in html


def test_bounce_shows_in_feed(client, alice, ticket, smtp):
    """A later bounce turns the recipient's state to bounced."""
    message = services.post_message(
        record=ticket, kind="email", author=alice, body_html="hi"
    )
    process_outbox()
    mark_recipient_bounced(
        message_id=message.message_id,
        address="dana@customer.example",
        reason="550 user unknown",
    )
    html = panel_html(client, alice, ticket)
    assert 'badge badge-err">bounced<' in html and "550 user unknown" in html


def test_mail_too_large_keeps_the_post_and_says_why(
    client, alice, ticket, settings, smtp
):
    """Over the mail size limit: the message is posted, the recipient shows failed."""
    settings.KNOWLIX_MAIL_MAX_BYTES = 2000
    message = services.post_message(
        record=ticket,
        kind="email",
        author=alice,
        body_html="big",
        attachments=[AttachmentInput(filename="big.bin", content=b"x" * 5000)],
    )
    row = MessageRecipient.objects.get(message=message)
    assert "limit" in row.delivery_error
    assert not OutgoingRecipient.objects.exists()
    assert 'badge badge-err">failed<' in panel_html(client, alice, ticket)


def test_feed_of_a_non_record_model_mails_its_followers(
    admin_user, prefers_email, smtp
):
    """Any model may have a feed (e.g. a sending domain): its followers get mail."""
    from dnscheck.models import SendingDomain

    domain = SendingDomain.objects.create(name="example.org")
    prefers_email(admin_user)
    services.follow(record=domain, user=admin_user)
    services.post_message(
        record=domain,
        kind="notification",
        subtype="stage",
        body_html="<p>SPF broke</p>",
    )
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["admin@example.com"]]
    assert b"SPF broke" in smtp.received[0].raw
