"""Alias contact policies, fixed records, loop limits, authors and authenticity."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType

from feed.models import Follower, Message, MessageRecipient
from feed.services import follow
from knowlix import params
from knowlix.models import Contact, Ticket
from mailservers.models import OutgoingMail
from routing.matching import TRUSTED_AUTHSERV_IDS
from routing.models import Alias, InboundMail, SenderRateCounter
from tests.routing.conftest import eml


def to_alias(n: int, *, sender: str, to: str = "helpdesk@example.com", subject="Hi"):
    return eml("to_alias.eml", n=n, to=to, subject=subject, **{"from": sender})


def test_known_contacts_policy_refuses_strangers_with_custom_text(aliases, route):
    """A stranger writing to a known-contacts alias gets the alias text, no record."""
    Alias.objects.filter(name="helpdesk").update(
        contact_policy=Alias.ContactPolicy.KNOWN,
        bounce_message="Only customers with a contract may open tickets.",
    )
    result = route(to_alias(1, sender="stranger@nowhere.example"))
    assert result.outcome == "refused"
    assert not Ticket.objects.exists()
    bounce = OutgoingMail.objects.get()
    assert bounce.from_name == "MAILER-DAEMON"
    assert bounce.from_address == "bounce@example.com"
    assert b"Only customers with a contract" in bytes(bounce.raw)


def test_known_contacts_policy_accepts_a_known_contact(aliases, route, contact):
    """A known contact passes the known-contacts policy."""
    Alias.objects.filter(name="helpdesk").update(contact_policy="known")
    result = route(to_alias(2, sender=contact.email))
    assert result.outcome == "routed"
    assert Ticket.objects.get().contact == contact


def test_fixed_record_alias_posts_there_and_checks_followers(
    aliases, route, ticket, contact
):
    """An alias with a fixed record posts on it, for followers only if so set."""
    Alias.objects.create(
        name="printer-room",
        content_type=ContentType.objects.get_for_model(Ticket),
        object_id=ticket.pk,
        contact_policy=Alias.ContactPolicy.FOLLOWERS,
    )
    ok = route(to_alias(3, sender=contact.email, to="printer-room@example.com"))
    assert ok.routes[0].action == "posted"
    assert ok.routes[0].record == f"knowlix.ticket:{ticket.pk}"
    refused = route(
        to_alias(4, sender="other@else.example", to="printer-room@example.com")
    )
    assert refused.outcome == "refused"
    assert Ticket.objects.count() == 1


def test_alias_defaults_fill_the_new_record(aliases, route):
    """Alias default values are set on records it creates."""
    Alias.objects.filter(name="helpdesk").update(defaults={"priority": "urgent"})
    route(to_alias(5, sender="x@customer.example"))
    assert Ticket.objects.get().priority == "urgent"


def test_sender_creating_too_many_records_is_refused_with_a_tagged_bounce(
    aliases, route
):
    """Past the loop limit a sender is refused with a tagged bounce, sent once."""
    params.set_param(params.LOOP_LIMIT, "3")
    for n in range(3):
        assert route(to_alias(10 + n, sender="robot@loop.example")).outcome == "routed"
    fourth = route(to_alias(13, sender="robot@loop.example"))
    assert fourth.outcome == "refused"
    assert "loop" in fourth.reason
    tag = InboundMail.objects.get(message_id="<to-alias-13@sender.example>").loop_tag
    assert tag.startswith("KLOOP-")
    bounce = OutgoingMail.objects.get()
    assert tag in bounce.subject
    assert route(to_alias(14, sender="robot@loop.example")).outcome == "refused"
    assert OutgoingMail.objects.count() == 1  # warned once per window
    assert Ticket.objects.count() == 3
    reply = route(eml("reply_to_loop_bounce.eml", tag=tag))
    assert reply.outcome == "ignored"


def test_too_many_messages_on_one_record_are_refused(aliases, route, ticket):
    """Past the limit of messages on one record, further ones are refused."""
    params.set_param(params.LOOP_LIMIT, "2")
    raws = [
        eml("reply_token.eml", token=ticket.reply_token).replace(
            b"reply-token-1", b"reply-token-%d" % n
        )
        for n in range(3)
    ]
    outcomes = [route(raw).outcome for raw in raws]
    assert outcomes == ["routed", "routed", "refused"]
    counter = SenderRateCounter.objects.get(scope="post")
    assert counter.count == 2


def test_allow_listed_sender_is_never_loop_limited(aliases, route):
    """Senders on the allow-list may create any number of records."""
    params.set_param(params.LOOP_LIMIT, "1")
    params.set_param("mail.gateway.loop.allowlist", "partner.example")
    for n in range(3):
        assert route(to_alias(20 + n, sender="bot@partner.example")).outcome == "routed"


def test_follower_is_preferred_as_author(aliases, route, ticket, make_contact, alice):
    """Of two contacts with the same address, the record's follower is the author."""
    make_contact(name="Older duplicate", email="dup@customer.example")
    follower = make_contact(name="Follower", email="DUP@customer.example")
    follow(record=ticket, contact=follower)
    raw = eml("reply_token.eml", token=ticket.reply_token).replace(
        b"dana@customer.example", b"dup@customer.example"
    )
    result = route(raw)
    assert Message.objects.get(pk=result.routes[0].message).author_contact == follower


def test_user_sender_is_the_author_and_follows(aliases, route, bob):
    """Proven mail from a user's address is authored by the user, who follows."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    result = route(
        b"Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\r\n"
        + to_alias(30, sender=bob.email)
    )
    message = Message.objects.get(pk=result.routes[0].message)
    assert message.author_user == bob
    ticket = Ticket.objects.get()
    assert Follower.objects.filter(
        content_type=ContentType.objects.get_for_model(Ticket),
        object_id=ticket.pk,
        user=bob,
    ).exists()


def test_cc_addresses_are_linked_as_recipients(aliases, route):
    """Other To/Cc people are recipients; our own aliases and reply addresses are not."""
    raw = eml("two_aliases.eml").replace(
        b"To: jobs@example.com, helpdesk@example.com\r\n",
        b"To: jobs@example.com, helpdesk@example.com\r\n"
        b"Cc: Gina Partner <gina@partner.example>, reply+abc@example.com\r\n",
    )
    result = route(raw)
    message = Message.objects.get(pk=result.routes[0].message)
    addresses = set(
        MessageRecipient.objects.filter(message=message).values_list(
            "address", flat=True
        )
    )
    assert addresses == {"gina@partner.example"}


def test_trusted_failed_authentication_marks_unverified_sender(aliases, route, contact):
    """A failing verdict from the trusted authserv-id marks the message unverified."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    result = route(eml("authentication_results.eml", authserv="mx.example.com", n=1))
    message = Message.objects.get(pk=result.routes[0].message)
    assert message.is_unverified_sender
    assert "dmarc=fail" in message.auth_verdict
    assert message.author_contact == contact  # attributed, but flagged


def test_untrusted_authentication_results_are_ignored(aliases, route, contact):
    """Authentication-Results from anyone else are not believed."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    result = route(eml("authentication_results.eml", authserv="forged.example", n=2))
    message = Message.objects.get(pk=result.routes[0].message)
    assert not message.is_unverified_sender
    assert message.auth_verdict == ""


def test_unverified_sender_cannot_use_a_subject_tag(aliases, route, ticket, contact):
    """A forged participant (failed DMARC) cannot post through a subject tag."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    raw = (
        eml("authentication_results.eml", authserv="mx.example.com", n=3)
        .replace(
            b"Subject: Please change my bank account",
            b"Subject: Re: [TCK-%d] bank account" % ticket.pk,
        )
        .replace(b"To: helpdesk@example.com", b"To: support-desk@example.com")
    )
    result = route(raw)
    assert result.outcome == "refused"
    assert Contact.objects.filter(email_normalized=contact.email).count() == 1
