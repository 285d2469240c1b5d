"""VERP: each recipient's envelope sender is bounce+<token>@<catch-all>, and a bounce
to it marks exactly that recipient, even when the report names nothing else."""

from __future__ import annotations

import pytest

from feed import services
from knowlix.models import Contact
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import process_outbox
from tests.routing.conftest import eml

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_to_two(settings, smtp_server, catchall, alice, ticket, make_contact):
    """A message to Dana and Erin (two companies), through the loopback sink."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    erin = make_contact(name="Erin", email="erin@other-company.example")
    services.follow(record=ticket, contact=erin)
    services.post_message(record=ticket, kind="email", author=alice, body_html="hi")
    process_outbox()
    return {r.rcpt_tos[0]: r.mail_from for r in smtp_server.received}


def test_every_recipient_has_its_own_verp_sender(sent_to_two):
    """Each transaction's MAIL FROM is bounce+<its token>@ the catch-all domain."""
    senders = sent_to_two
    assert len(set(senders.values())) == 2
    for address, mail_from in senders.items():
        row = OutgoingRecipient.objects.get(address=address)
        assert mail_from == f"bounce+{row.verp_token}@example.com"


def test_dsn_without_original_headers_marks_exactly_that_recipient(route, sent_to_two):
    """A report with no headers and no Final-Recipient, to Erin's VERP address."""
    result = route(
        eml("dsn_verp_no_headers.eml", verp=sent_to_two["erin@other-company.example"])
    )
    assert result.outcome == "bounce"
    assert "erin@other-company.example" in result.reason
    states = dict(OutgoingRecipient.objects.values_list("address", "state"))
    assert states == {
        "dana@customer.example": "sent",
        "erin@other-company.example": "bounced",
    }
    erin = OutgoingRecipient.objects.get(address="erin@other-company.example")
    assert "user unknown" in erin.last_error
    assert Contact.objects.get(email="erin@other-company.example").bounce_count == 1


def test_verp_address_is_matched_when_the_mta_lower_cases_it(route, sent_to_two):
    """Upper-cased by a relay, the VERP address still finds its recipient."""
    verp = sent_to_two["dana@customer.example"].upper()
    route(eml("dsn_verp_no_headers.eml", verp=verp))
    row = OutgoingRecipient.objects.get(address="dana@customer.example")
    assert row.state == OutgoingRecipient.State.BOUNCED


def test_auto_reply_to_verp_address_marks_nobody(route, sent_to_two):
    """An out-of-office answer to the envelope sender is no bounce."""
    verp = sent_to_two["erin@other-company.example"]
    result = route(eml("auto_reply_to_verp.eml", verp=verp))
    assert "not a delivery report" in result.reason
    assert set(OutgoingRecipient.objects.values_list("state", flat=True)) == {"sent"}


def test_forged_token_marks_nobody(route, sent_to_two):
    """A report to a bounce+ address with an unknown token changes nothing."""
    result = route(eml("dsn_verp_no_headers.eml", verp="bounce+0123abcd@example.com"))
    assert result.outcome == "bounce"
    assert "unknown bounce address" in result.reason
    assert set(OutgoingRecipient.objects.values_list("state", flat=True)) == {"sent"}
