"""One mail per external recipient, through the real queue and a loopback SMTP sink.

Each contact sees only itself in To; every address works or fails alone (IDN
domains in punycode, non-ASCII local parts only with SMTPUTF8); nobody in the To/Cc
of a received mail gets it again; the delivery plan writes nothing itself.
"""

from __future__ import annotations

import email
import email.policy

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from feed import recipients as rcpt
from feed import services
from feed.models import Follower, Message, MessageRecipient, Subtype
from feed.services.posting import write_plan
from knowlix.models import Contact
from mailservers.models import OutgoingMail, OutgoingRecipient
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


@pytest.fixture
def erin(make_contact, ticket):
    """A second customer, at another company, following the ticket."""
    erin = make_contact(name="Erin Buyer", email="erin@other-company.example")
    services.follow(record=ticket, contact=erin)
    return erin


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def to_addresses(raw: bytes) -> list[str]:
    mail = parse(raw)
    headers = [mail[h] for h in ("To", "Cc") if mail[h] is not None]
    return [a.addr_spec for header in headers for a in header.addresses]


def panel_html(client, user, record) -> str:
    client.force_login(user)
    ct = ContentType.objects.get_for_model(record)
    return client.get(reverse("feed:panel", args=[ct.pk, record.pk])).content.decode()


def test_two_companies_each_see_only_themselves(client, alice, ticket, erin, smtp):
    """Dana and Erin each get their own mail, To: themselves alone, and threads."""
    message = services.post_message(
        record=ticket, kind="email", author=alice, body_html="<p>Fixed.</p>"
    )
    process_outbox()
    by_rcpt = {r.rcpt_tos[0]: r for r in smtp.received}
    assert sorted(by_rcpt) == ["dana@customer.example", "erin@other-company.example"]
    for address, received in by_rcpt.items():
        assert received.rcpt_tos == [address]
        assert to_addresses(received.raw) == [address]
        other = ({*by_rcpt} - {address}).pop()
        assert other.encode() not in received.raw
    ids = {parse(r.raw)["Message-ID"] for r in smtp.received}
    left = message.message_id.strip("<>").split("@")[0]
    assert message.message_id in ids and len(ids) == 2
    assert all(i.startswith("<" + left) for i in ids)  # one Message-ID family
    # Each mail threads back to the ticket (routing matches every copy's id).
    assert set(OutgoingMail.objects.values_list("message_id", flat=True)) == ids
    # Each recipient has its own delivery state, shown in the feed.
    assert OutgoingMail.objects.count() == 2
    assert set(OutgoingRecipient.objects.values_list("state", flat=True)) == {"sent"}
    html = panel_html(client, alice, ticket)
    assert html.count('badge badge-ok">sent<') >= 2


def test_one_refused_recipient_does_not_hold_back_the_other(
    client, alice, ticket, erin, smtp
):
    """Dana's 550 is hers alone: Erin's mail leaves, each state in the feed."""
    smtp.fail_rcpt("dana@customer.example", 550, "5.1.1 mailbox unavailable")
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    states = dict(OutgoingRecipient.objects.values_list("address", "state"))
    assert states == {
        "dana@customer.example": "failed",
        "erin@other-company.example": "sent",
    }
    assert [r.rcpt_tos for r in smtp.received] == [["erin@other-company.example"]]
    html = panel_html(client, alice, ticket)
    assert 'badge badge-err">failed<' in html and 'badge badge-ok">sent<' in html


def test_typed_to_and_cc_are_kept_as_written(alice, ticket, smtp):
    """Addresses the author typed go out together, in To and Cc as typed."""
    services.post_message(
        record=ticket,
        kind="email",
        author=alice,
        body_html="hi",
        recipients=["Gus <gus@partner.example>"],
        cc=["hal@partner.example"],
    )
    process_outbox()
    typed = [r for r in smtp.received if "gus@partner.example" in r.rcpt_tos[0]]
    hal = [r for r in smtp.received if r.rcpt_tos == ["hal@partner.example"]]
    (gus_mail,) = typed
    (hal_mail,) = hal
    assert gus_mail.raw == hal_mail.raw  # one mail, one transaction per recipient
    mail = parse(gus_mail.raw)
    assert [a.addr_spec for a in mail["To"].addresses] == ["gus@partner.example"]
    assert mail["To"].addresses[0].display_name == "Gus"
    assert [a.addr_spec for a in mail["Cc"].addresses] == ["hal@partner.example"]
    dana = [r for r in smtp.received if r.rcpt_tos == ["dana@customer.example"]]
    assert to_addresses(dana[0].raw) == ["dana@customer.example"]
    assert Contact.objects.filter(email_normalized="hal@partner.example").exists()


def test_colleague_in_cc_of_a_reply_is_not_mailed_it_again(
    alice, bob, ticket, contact, prefers_email, smtp
):
    """Bob (prefers email) was in Cc of Dana's reply: inbox notice, no second mail."""
    prefers_email(bob)
    services.follow(record=ticket, user=bob)
    message = services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        email_from="dana@customer.example",
        message_id="<reply-1@customer.example>",
        body_html="<p>thanks</p>",
        recipients=["support@example.com", "Bob <BOB@example.com>"],
    )
    process_outbox()
    assert message.notifications.filter(user=bob).exists()
    assert all("bob@example.com" not in r.rcpt_tos for r in smtp.received)
    assert not MessageRecipient.objects.filter(message=message, user=bob).exists()


def test_idn_recipient_beside_an_ordinary_one(alice, ticket, make_contact, smtp):
    """kunde@bücher.example goes out in punycode; Dana's mail is unaffected."""
    kunde = make_contact(name="Kunde", email="kunde@bücher.example")
    services.follow(record=ticket, contact=kunde)
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    rcpts = sorted(r.rcpt_tos[0] for r in smtp.received)
    assert rcpts == ["dana@customer.example", "kunde@xn--bcher-kva.example"]
    idn = next(r for r in smtp.received if r.rcpt_tos[0].startswith("kunde"))
    assert to_addresses(idn.raw) == ["kunde@xn--bcher-kva.example"]
    header_block = idn.raw.split(b"\r\n\r\n")[0]
    assert b"<kunde@xn--bcher-kva.example>" in header_block.split(b"\r\nTo: ")[1]
    assert set(OutgoingRecipient.objects.values_list("state", flat=True)) == {"sent"}


def test_non_ascii_local_part_without_smtputf8_fails_alone(
    client, alice, ticket, make_contact, smtp
):
    """jörg@ fails with a clear reason when the server lacks SMTPUTF8; Dana gets hers."""
    jorg = make_contact(name="Jörg", email="jörg@example.de")
    services.follow(record=ticket, contact=jorg)
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["dana@customer.example"]]
    row = OutgoingRecipient.objects.get(address="jörg@example.de")
    assert row.state == OutgoingRecipient.State.FAILED
    assert "SMTPUTF8" in row.last_error
    assert not OutgoingMail.objects.filter(state="sending").exists()
    assert "SMTPUTF8" in panel_html(client, alice, ticket)


def test_non_ascii_local_part_with_smtputf8_is_sent(alice, ticket, make_contact, smtp):
    """A server offering SMTPUTF8 gets jörg@ in the envelope and in UTF-8 headers."""
    smtp.smtputf8 = True
    jorg = make_contact(name="Jörg", email="jörg@example.de")
    services.follow(record=ticket, contact=jorg)
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    received = next(r for r in smtp.received if r.rcpt_tos != ["dana@customer.example"])
    assert received.rcpt_tos == ["jörg@example.de"]
    assert "jörg@example.de".encode() in received.raw
    assert OutgoingRecipient.objects.get(address="jörg@example.de").state == "sent"


def test_delivery_plan_writes_nothing(alice, ticket, django_assert_num_queries):
    """plan_delivery only reads; write_plan creates the typed contact and follows."""
    message = Message.objects.create(
        content_object=ticket,
        kind="email",
        direction="out",
        subtype=Subtype.objects.get(code=Subtype.DISCUSSION),
        author_user=alice,
        message_id="<plan-1@example.com>",
        body_html="<p>x</p>",
        body_text="x",
    )
    followers = Follower.objects.count()
    plan = rcpt.plan_delivery(
        message=message, record=ticket, extra_addresses=["new@partner.example"]
    )
    assert Follower.objects.count() == followers
    assert not Contact.objects.filter(email_normalized="new@partner.example").exists()
    assert [c.email for c in plan.new_contacts] == ["new@partner.example"]
    assert [a.address for a in plan.typed] == ["new@partner.example"]
    assert [a.address for a in plan.external] == ["dana@customer.example"]
    write_plan(record=ticket, plan=plan)
    new = Contact.objects.get(email_normalized="new@partner.example")
    assert Follower.objects.filter(contact=new, object_id=ticket.pk).exists()


@pytest.mark.parametrize(
    ("field", "typed", "error"),
    [
        ("recipients", "bad@@x.example", "not an email address"),
        ("recipients", "erin@buyer.example, no-at-sign", "no @"),
        ("cc", "erin@bad_domain.example", "not a valid domain name"),
        ("cc", "a b@example.com", "not an email address"),
    ],
)
def test_composer_refuses_what_the_queue_cannot_send(
    client, alice, ticket, field, typed, error
):
    """The composer checks addresses as the queue does, with a clear error (422)."""
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    response = client.post(
        reverse("feed:post", args=[ct.pk, ticket.pk]),
        {"kind": "email", "body": "hi", field: typed},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert error in response.content.decode()
    assert not Message.objects.filter(kind="email").exists()


def test_composer_accepts_idn_and_unicode_addresses(client, alice, ticket):
    """kunde@bücher.example and jörg@example.de are posted as typed."""
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    response = client.post(
        reverse("feed:post", args=[ct.pk, ticket.pk]),
        {
            "kind": "email",
            "body": "hi",
            "recipients": "Kunde <kunde@bücher.example>",
            "cc": '"Jörg, Sales" <jörg@example.de>',
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    message = Message.objects.get(kind="email")
    rows = dict(message.recipients.values_list("address", "name"))
    assert rows["kunde@bücher.example"] == "Kunde"
    assert rows["jörg@example.de"] == "Jörg, Sales"


def resend_url(row: MessageRecipient) -> str:
    return reverse("feed:recipient-resend", args=[row.pk])


def test_resend_needs_write_access(client, alice, reader, ticket, smtp):
    """A reader may see the record but not resend; the resend is refused (403)."""
    smtp.fail_rcpt("dana@customer.example", 550, "5.1.1 no such user", times=1)
    message = services.post_message(
        record=ticket, kind="email", author=alice, body_html="hi"
    )
    process_outbox()
    row = message.recipients.get()
    assert 'data-test="resend"' in panel_html(client, alice, ticket)
    client.force_login(reader)
    assert client.post(resend_url(row), HTTP_HX_REQUEST="true").status_code == 403
    assert OutgoingMail.objects.count() == 1


def test_only_failed_or_bounced_recipients_are_resent(client, alice, ticket, smtp):
    """A recipient whose mail was sent is not resent; nothing is queued."""
    message = services.post_message(
        record=ticket, kind="email", author=alice, body_html="hi"
    )
    process_outbox()
    client.force_login(alice)
    response = client.post(resend_url(message.recipients.get()), follow=True)
    assert "Only a failed or bounced recipient can be resent." in response.text
    assert OutgoingMail.objects.count() == 1
