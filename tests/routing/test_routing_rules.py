"""One test per routing rule of issue #8, in the order the pipeline applies them."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dnscheck.models import SendingDomain
from feed.models import Message
from feed.services import notify_users, post_message
from knowlix.models import Contact, Opportunity, Ticket
from knowlix.records import RECORD_MODELS
from mailservers.models import OutgoingMail, OutgoingRecipient
from mailservers.services.outgoing import MailRecipient, queue_mail
from routing.models import InboundMail, UnprocessedMail
from tests.routing.conftest import eml


def outgoing_email(ticket, alice) -> Message:
    return post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>On it.</p>"
    )


def test_same_bytes_twice_is_a_duplicate(aliases, route):
    """The second delivery of identical bytes is a duplicate and stores nothing."""
    raw = eml("new_ticket.eml")
    assert route(raw).outcome == "routed"
    second = route(raw)
    assert second.outcome == "duplicate"
    assert Ticket.objects.count() == 1
    assert InboundMail.objects.count() == 1


def test_known_message_id_is_a_duplicate(aliases, route):
    """The same Message-ID relayed with other bytes is a duplicate."""
    route(eml("new_ticket.eml"))
    relayed = b"Received: from relay.example\r\n" + eml("new_ticket.eml")
    result = route(relayed)
    assert result.outcome == "duplicate"
    assert Ticket.objects.count() == 1


def test_our_own_x_knowlix_message_id_is_a_duplicate(aliases, route, ticket, alice):
    """Our own mail coming back with a rewritten Message-ID is a duplicate."""
    ours = outgoing_email(ticket, alice)
    raw = eml("new_ticket.eml").replace(
        b"Message-ID: <new-ticket-1@customer.example>",
        b"Message-ID: <rewritten-by-relay@relay.example>\r\n"
        b"X-Knowlix-Message-Id: " + ours.message_id.encode(),
    )
    assert route(raw).outcome == "duplicate"
    assert Ticket.objects.count() == 1  # only the fixture's ticket


def test_reply_to_loop_bounce_is_ignored(aliases, route):
    """A reply carrying our loop-bounce tag is ignored and creates nothing."""
    result = route(eml("reply_to_loop_bounce.eml", tag="KLOOP-0123456789abcdef"))
    assert result.outcome == "ignored"
    assert InboundMail.objects.get().outcome == "ignored"
    assert not Ticket.objects.exists()


def test_bounce_marks_recipient_and_counts_on_contact(aliases, route, contact):
    """A DSN marks the recipient bounced on the original mail and counts a bounce."""
    mail = queue_mail(
        from_address="notifications@example.com",
        recipients=[MailRecipient(address=contact.email)],
        subject="[TCK-1] Printer on fire",
        body_text="We are on it.",
        message_id="<original-for-dsn@example.com>",
        send_now=False,
    )
    result = route(eml("dsn_for_our_mail.eml", original=mail.message_id))
    assert result.outcome == "bounce"
    assert "mailbox unavailable" in result.reason
    recipient = OutgoingRecipient.objects.get(mail=mail)
    assert recipient.state == OutgoingRecipient.State.BOUNCED
    assert "5.1.1" in recipient.last_error
    contact.refresh_from_db()
    assert contact.bounce_count == 1
    assert not Ticket.objects.exists()


def test_normal_mail_resets_the_bounce_counter(aliases, route, contact):
    """A later normal mail from a bounced address resets its counter."""
    Contact.objects.filter(pk=contact.pk).update(bounce_count=3)
    route(eml("new_ticket.eml"))
    contact.refresh_from_db()
    assert contact.bounce_count == 0


def test_reply_token_address_posts_on_its_record(aliases, route, ticket):
    """Mail to reply+<token>@catch-all is posted on that record."""
    result = route(eml("reply_token.eml", token=ticket.reply_token))
    assert result.outcome == "routed"
    (r,) = result.routes
    assert (r.action, r.record) == ("posted", f"knowlix.ticket:{ticket.pk}")
    message = Message.objects.get(pk=r.message)
    assert message.direction == Message.Direction.INCOMING
    assert "dropped every threading header" in message.body_text


def test_reply_threads_under_the_message_it_answers(aliases, route, ticket, alice):
    """In-Reply-To finds the sent message: the reply is its child, with attachment."""
    parent = outgoing_email(ticket, alice)
    result = route(eml("reply_in_reply_to.eml", parent=parent.message_id))
    (r,) = result.routes
    reply = Message.objects.get(pk=r.message)
    assert reply.parent == parent and reply.content_object == ticket
    assert reply.message_id == "<reply-irt-1@customer.example>"
    (attachment,) = reply.attachments.all()
    assert attachment.filename == "printer.png"
    assert attachment.blob.file.read().startswith(b"\x89PNG")


def test_references_match_when_in_reply_to_is_unknown(aliases, route, ticket, alice):
    """The newest known id in References threads the reply."""
    parent = outgoing_email(ticket, alice)
    result = route(eml("reply_references_only.eml", parent=parent.message_id))
    reply = Message.objects.get(pk=result.routes[0].message)
    assert reply.parent == parent


def test_reply_to_outgoing_mail_id_finds_the_record(aliases, route, ticket):
    """A reply to the Message-ID of an outgoing mail (not a feed id) is threaded."""
    mail = queue_mail(
        from_address="notifications@example.com",
        recipients=[MailRecipient(address="dana@customer.example")],
        subject="Printer on fire",
        body_text="Any news?",
        record=ticket,
        send_now=False,
    )
    result = route(eml("reply_in_reply_to.eml", parent=mail.message_id))
    assert result.routes[0].record == f"knowlix.ticket:{ticket.pk}"


def test_reply_to_internal_note_stays_internal(aliases, route, ticket, alice):
    """A reply to an internal note is internal too."""
    note = post_message(
        record=ticket, kind=Message.Kind.NOTE, author=alice, body_html="<p>psst</p>"
    )
    result = route(eml("reply_in_reply_to.eml", parent=note.message_id))
    reply = Message.objects.get(pk=result.routes[0].message)
    assert reply.is_internal


def test_reply_to_a_system_notice_is_not_posted_on_its_object(aliases, route, alice):
    """A reply naming a notice about a non-record (a sending domain) is not threaded
    onto that object, whose messages no feed shows: it is routed as new mail."""
    domain = SendingDomain.objects.create(name="customer.example")
    notice = notify_users(
        target=domain, users=[alice], subject="DNS broke", body_html="<p>SPF</p>"
    )
    result = route(eml("reply_in_reply_to.eml", parent=notice.message_id))
    assert result.routes == []
    on_domain = Message.objects.filter(
        content_type=ContentType.objects.get_for_model(domain), object_id=domain.pk
    )
    assert list(on_domain) == [notice]


def test_subject_tag_from_a_participant_posts_there(aliases, route, ticket, contact):
    """A [TCK-n] tag routes a header-less reply from someone who follows the ticket."""
    result = route(eml("subject_tag.eml", pk=ticket.pk, n=1, **{"from": contact.email}))
    assert result.outcome == "routed"
    assert result.routes[0].record == f"knowlix.ticket:{ticket.pk}"


def test_subject_tag_from_a_stranger_is_ignored(aliases, route, ticket):
    """A guessable tag never lets a stranger post: routing goes on (refused here)."""
    result = route(
        eml("subject_tag.eml", pk=ticket.pk, n=2, **{"from": "mallory@evil.example"})
    )
    assert result.outcome == "refused"
    assert not Message.objects.filter(email_from__contains="mallory").exists()


def test_alias_creates_a_record_with_the_sender_as_contact(aliases, route):
    """helpdesk@ creates a ticket; the unknown sender becomes its following contact."""
    result = route(eml("new_ticket.eml"))
    (r,) = result.routes
    assert r.action == "created"
    ticket = Ticket.objects.get()
    assert ticket.subject == "The printer prints nothing"
    assert ticket.contact.email == "dana@customer.example"
    assert ticket.contact.name == "Dana Customer"
    message = Message.objects.get(pk=r.message)
    assert message.author_contact == ticket.contact


def test_bcc_alias_is_found_in_delivered_to(aliases, route):
    """An alias named only in Delivered-To (a Bcc via a catch-all) still routes."""
    result = route(eml("bcc_alias_delivered_to.eml"))
    assert result.routes[0].action == "created"
    assert Opportunity.objects.get().title == "We would like a quote"


def test_reply_cc_alias_of_other_kind_stays_a_reply(aliases, route, ticket, alice):
    """A ticket reply with sales@ only in Cc is posted on the ticket, nothing more."""
    parent = outgoing_email(ticket, alice)
    result = route(eml("forward_to_other_kind.eml", parent=parent.message_id))
    assert [(r.action, r.record) for r in result.routes] == [
        ("posted", f"knowlix.ticket:{ticket.pk}")
    ]
    assert not Opportunity.objects.exists()
    assert Message.objects.get(pk=result.routes[0].message).parent == parent


def test_reply_to_alias_of_other_kind_is_a_forward(aliases, route, ticket, alice):
    """A ticket reply addressed To sales@ creates an opportunity, and is not posted
    on the ticket."""
    parent = outgoing_email(ticket, alice)
    result = route(eml("reply_to_other_kind.eml", parent=parent.message_id))
    assert [r.action for r in result.routes] == ["created"]
    opportunity = Opportunity.objects.get()
    assert result.routes[0].record == f"knowlix.opportunity:{opportunity.pk}"
    assert opportunity.contact.email == "dana@customer.example"
    on_ticket = Message.objects.filter(
        content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk
    )
    assert list(on_ticket.filter(kind=Message.Kind.EMAIL)) == [parent]


def test_reply_to_alias_of_same_kind_stays_a_reply(aliases, route, ticket, alice):
    """A ticket reply addressed To helpdesk@ is posted on the ticket, no new ticket."""
    parent = outgoing_email(ticket, alice)
    result = route(eml("reply_to_same_kind.eml", parent=parent.message_id))
    assert [(r.action, r.record) for r in result.routes] == [
        ("posted", f"knowlix.ticket:{ticket.pk}")
    ]
    assert Ticket.objects.count() == 1


def test_two_creating_aliases_create_a_record_in_each(aliases, route):
    """jobs@ and helpdesk@ in one mail: an application and a ticket, both with CV."""
    from knowlix.models import JobApplication

    result = route(eml("two_aliases.eml"))
    assert sorted(r.record.split(":")[0] for r in result.routes) == [
        "knowlix.jobapplication",
        "knowlix.ticket",
    ]
    application = JobApplication.objects.get()
    assert application.email == "frank@applicant.example"
    messages = Message.objects.filter(pk__in=[r.message for r in result.routes])
    assert {m.attachments.get().filename for m in messages} == {"cv-frank.pdf"}
    assert len({m.message_id for m in messages}) == 2


def test_server_default_action_creates_a_record(db, catchall, groups, route):
    """With no alias, the receiving server's default action creates the record."""
    from mailservers.models import IncomingServer

    server = IncomingServer.objects.create(
        name="Support mailbox",
        host="imap.example.com",
        username="support@example.com",
        default_action=IncomingServer.DefaultAction.OPPORTUNITY,
    )
    result = route(eml("not_for_us.eml"), server=server)
    assert result.routes[0].action == "created"
    assert Opportunity.objects.get().title == "Misdelivered"
    assert InboundMail.objects.get().server_name == str(server)


def test_unknown_address_at_our_domain_is_refused_politely(aliases, route):
    """An unknown address at the catch-all domain: no record, a polite bounce."""
    result = route(eml("unknown_address.eml"))
    assert result.outcome == "refused"
    assert not Ticket.objects.exists()
    bounce = OutgoingMail.objects.get()
    assert bounce.from_address == "bounce@example.com"
    assert bounce.from_name == "MAILER-DAEMON"
    assert bounce.recipients.get().address == "gina@stranger.example"
    assert b"Auto-Submitted: auto-generated" in bytes(bounce.raw)
    assert InboundMail.objects.get().replied_at is not None


def test_auto_reply_is_refused_without_an_answer(aliases, route):
    """Auto-submitted mail to an unknown address never triggers an answer."""
    result = route(eml("unknown_address_auto_reply.eml"))
    assert result.outcome == "refused"
    assert not OutgoingMail.objects.exists()


def test_mail_not_for_us_is_quarantined(aliases, route):
    """Mail with no route at all is quarantined with its raw bytes and the reason."""
    raw = eml("not_for_us.eml")
    result = route(raw)
    assert result.outcome == "quarantined"
    unprocessed = UnprocessedMail.objects.get()
    assert bytes(unprocessed.inbound.raw) == raw
    assert "No route" in unprocessed.reason


def test_interrupted_routing_is_quarantined_on_redelivery(aliases, route):
    """A copy stored but never routed (a crash) goes to quarantine when it comes again."""
    import datetime as dt
    import hashlib

    from django.utils import timezone

    raw = eml("new_ticket.eml")
    InboundMail.objects.create(
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        message_id="<new-ticket-1@customer.example>",
        received_at=timezone.now() - dt.timedelta(hours=1),
    )
    result = route(raw)
    assert result.outcome == "quarantined"
    assert "interrupted" in UnprocessedMail.objects.get().reason
    assert not Ticket.objects.exists()


def test_database_failure_while_routing_quarantines_the_message(
    aliases, route, monkeypatch
):
    """An unexpected error mid-routing rolls back its writes and quarantines the mail."""
    from routing import writes

    def broken(posts):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "post_messages", broken)
    result = route(eml("new_ticket.eml"))
    assert result.outcome == "quarantined"
    assert "disk full" in UnprocessedMail.objects.get().detail
    assert not Ticket.objects.exists()  # the record created before the error is gone


def test_concurrent_copies_with_one_message_id_store_once(aliases, route, monkeypatch):
    """Two copies with one Message-ID racing past the check: the second is refused by
    the database and reported as a duplicate, never routed twice."""
    from routing import services

    raw = eml("new_ticket.eml")
    other = b"Received: from relay.example\r\n" + raw
    monkeypatch.setattr(services, "duplicate_reasons", lambda items: [""] * len(items))
    assert route(raw).outcome == "routed"
    assert route(other).outcome == "duplicate"  # both passed the check
    assert Ticket.objects.count() == 1


def test_mail_from_our_own_alias_is_ignored(aliases, route):
    """Mail claiming to come from one of our aliases is a loop: ignored, no record."""
    raw = eml("new_ticket.eml").replace(
        b"From: Dana Customer <dana@customer.example>", b"From: sales@example.com"
    )
    result = route(raw)
    assert result.outcome == "ignored"
    assert not Ticket.objects.exists()


def test_bounce_from_our_own_mta_is_still_a_bounce(aliases, route):
    """A report from MAILER-DAEMON at our own domain is read as a bounce."""
    raw = eml("dsn_for_our_mail.eml", original="<x@example.com>").replace(
        b"MAILER-DAEMON@mx.customer.example", b"MAILER-DAEMON@example.com"
    )
    assert route(raw).outcome == "bounce"


def test_lower_cased_reply_token_still_finds_its_record(aliases, route, ticket):
    """A token lower-cased by the delivering MTA (Delivered-To only) still matches."""
    raw = eml("reply_token.eml", token=ticket.reply_token).replace(
        b'To: "Printer ticket" <reply+'
        + ticket.reply_token.encode()
        + b"@example.com>",
        b"To: undisclosed-recipients:;\r\nDelivered-To: reply+"
        + ticket.reply_token.lower().encode()
        + b"@example.com",
    )
    result = route(raw)
    assert result.routes[0].record == f"knowlix.ticket:{ticket.pk}"


def test_a_lower_cased_token_is_looked_up_by_index_not_by_scanning(
    aliases, route, ticket
):
    """Anyone can send to a lower-cased reply+ address that matches nothing: the
    fallback's query on each record table can use its UPPER(reply_token) index
    (PostgreSQL plans it with sequential scans off; SQLite names it)."""
    raw = eml("reply_token.eml", token=ticket.reply_token).replace(
        ticket.reply_token.encode(), b"forgedtoken" + ticket.reply_token[11:].encode()
    )
    with CaptureQueriesContext(connection) as queries:
        route(raw)
    lookups = [
        q["sql"]
        for q in queries.captured_queries
        if "UPPER(" in q["sql"] and "reply_token" in q["sql"]
    ]
    assert len(lookups) == len(RECORD_MODELS)
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in lookups:
            cursor.execute(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + sql)
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "_token_ci" in plan, plan


def test_forward_that_keeps_the_reply_address_is_also_a_reply(
    aliases, route, ticket, alice
):
    """To the ticket's reply address and sales@: the sender wrote to both, so the
    mail is posted on the ticket and creates an opportunity."""
    parent = outgoing_email(ticket, alice)
    raw = eml("reply_to_other_kind.eml", parent=parent.message_id).replace(
        b"To: sales@example.com",
        f"To: reply+{ticket.reply_token}@example.com, sales@example.com".encode(),
    )
    result = route(raw)
    opportunity = Opportunity.objects.get()
    assert [(r.action, r.record) for r in result.routes] == [
        ("posted", f"knowlix.ticket:{ticket.pk}"),
        ("created", f"knowlix.opportunity:{opportunity.pk}"),
    ]
    assert Message.objects.get(pk=result.routes[0].message).parent == parent


def test_forwarded_record_title_has_no_reply_prefix_nor_the_threads_tag(
    aliases, route, ticket, alice
):
    """A ticket mail forwarded to sales@ creates "Printer on fire", not
    "Fwd: Re: [TCK-1] Printer on fire": the prefixes and the other record's tag
    are the mail's, not the opportunity's."""
    parent = outgoing_email(ticket, alice)
    raw = eml("reply_to_other_kind.eml", parent=parent.message_id).replace(
        b"Subject: Fwd: Printer on fire - we want to buy ten more",
        f"Subject: Fwd: RE: [TCK-{ticket.pk}] Printer on fire".encode(),
    )
    route(raw)
    assert Opportunity.objects.get().title == "Printer on fire"


def test_reply_to_aliases_of_both_kinds_is_a_reply_and_a_forward(
    aliases, route, ticket, alice
):
    """A ticket reply To helpdesk@ and sales@: the helpdesk alias keeps it a reply on
    the ticket, the sales alias forwards it (an opportunity)."""
    parent = outgoing_email(ticket, alice)
    raw = eml("reply_to_other_kind.eml", parent=parent.message_id).replace(
        b"To: sales@example.com", b"To: helpdesk@example.com, sales@example.com"
    )
    result = route(raw)
    opportunity = Opportunity.objects.get()
    assert [(r.action, r.record) for r in result.routes] == [
        ("posted", f"knowlix.ticket:{ticket.pk}"),
        ("created", f"knowlix.opportunity:{opportunity.pk}"),
    ]
    assert Ticket.objects.count() == 1
