"""Routing a group of messages at once (``route_incoming_messages``, the pollers' way)
message the outcome, records, feed messages, followers, recipients, notifications,
loop counters and quarantine entries that routing them one by one gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from feed.models import Follower, Message, MessageRecipient, Notification
from feed.services import follow
from knowlix import params
from knowlix.models import Contact, Ticket
from knowlix.records import RECORD_MODELS
from mailservers.models import OutgoingMail
from routing.models import Alias, InboundMail, SenderRateCounter, UnprocessedMail
from routing.services import route_incoming_messages
from tests.routing.conftest import eml

CORPUS = sorted(
    (Path(__file__).resolve().parent.parent / "data" / "corpus").glob("*.eml")
)


class Server:
    """What routing reads from an incoming server."""

    default_action = "knowlix.ticket"

    def __str__(self) -> str:
        return "Support mailbox"


def request(
    n: int,
    *,
    sender: str = "",
    to: str = "support@mailbox.example",
    cc: str = "Gina <gina@partner.example>",
) -> bytes:
    """A new customer request (multipart), as the pollers fetch them."""
    sender = sender or f"customer{n % 3}@client.example"
    return (
        f"From: Customer {n} <{sender}>\r\nTo: {to}\r\nCc: {cc}\r\n"
        f"Subject: Request {n}\r\nMessage-ID: <req-{n}@client.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nRequest {n}, thanks @bob\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n<p>Request {n}<script>x()</script></p>\r\n"
        "--b--\r\n"
    ).encode()


def mixed_mailbox(ticket: Ticket, bob) -> list[bytes]:
    """New requests interleaved with everything that is not one: replies (one to a
    request of the same batch), duplicates, bounces, loop-limited senders, mail of a
    user, to aliases (one creating records for everyone, one for known senders
    only), malformed mail."""
    first_reply = eml("reply_in_reply_to.eml", parent="<req-1@client.example>")
    raws = [request(n) for n in range(6)]
    # Names a newcomer in Cc: one by one, the newcomer's own mail comes after.
    raws += [request(40, sender="carl@client.example", cc="newbie@client.example")]
    raws += [request(41, sender="newbie@client.example")]
    raws += [request(42, sender="dora@client.example", cc="newbie@client.example")]
    raws += [first_reply, request(3), request(7, sender=bob.email)]
    raws += [eml("new_ticket.eml"), eml("reply_token.eml", token=ticket.reply_token)]
    raws += [request(8, to="sales@example.com"), request(9, to="jobs@example.com")]
    raws += [request(20 + n, sender="robot@loop.example") for n in range(4)]
    raws += [
        eml("dsn_for_our_mail.eml", original="<req-2@client.example>"),
        eml("not_for_us.eml"),
    ]
    raws += [path.read_bytes() for path in CORPUS]
    raws += [request(n) for n in range(30, 36)]
    return raws


def snapshot() -> dict:
    """Everything routing wrote, by natural keys (no ids, no generated tokens)."""
    titles = {}
    for model in RECORD_MODELS:
        for record in model.objects.all():
            titles[(model._meta.label_lower, record.pk)] = str(record)
            titles[(model._meta.model, record.pk)] = str(record)

    def title(content_type_id: int, object_id: int) -> str:
        from django.contrib.contenttypes.models import ContentType

        model = ContentType.objects.get_for_id(content_type_id).model_class()
        return titles.get((model, object_id), f"{model.__name__}:{object_id}")

    def label(value: str) -> str:
        model, _sep, pk = value.rpartition(":")
        return titles.get((model, int(pk)), value) if pk.isdigit() else value

    def who(user, contact) -> str:
        return user.username if user else (contact.email if contact else "")

    messages = Message.objects.select_related("author_user", "author_contact")
    return {
        "records": sorted(
            (type(r).__name__, str(r), str(getattr(r, "contact", "") or ""))
            for model in RECORD_MODELS
            for r in model.objects.all()
        ),
        "contacts": sorted(
            Contact.objects.values_list("email", "name", "bounce_count")
        ),
        "messages": sorted(
            (
                title(m.content_type_id, m.object_id),
                m.kind,
                m.subtype.code if m.subtype else "",
                m.subject,
                who(m.author_user, m.author_contact),
                m.body_html,
                m.body_text,
                m.is_unverified_sender,
                m.direction,
                m.parent.subject if m.parent else "",
            )
            for m in messages
        ),
        "followers": sorted(
            (
                title(f.content_type_id, f.object_id),
                who(f.user, f.contact),
                tuple(sorted(f.subtypes.values_list("code", flat=True))),
            )
            for f in Follower.objects.select_related("user", "contact")
        ),
        "recipients": sorted(
            (r.message.subject, r.message.kind, r.address, r.contact_id is not None)
            for r in MessageRecipient.objects.select_related("message")
        ),
        "notifications": sorted(
            (n.user.username, n.message.subject, n.message.kind)
            for n in Notification.objects.select_related("user", "message")
        ),
        "outgoing": sorted(
            (
                # A random loop tag; record ids (PostgreSQL does not reuse them).
                re.sub(r"KLOOP-\w+|\[[A-Z]+-\d+\]", "*", m.subject),
                tuple(sorted(r.address for r in m.recipients.all())),
            )
            for m in OutgoingMail.objects.all()
        ),
        "inbound": sorted(
            (
                i.sha256,
                i.outcome,
                i.reason,
                tuple(label(r["record"]) for r in i.routes),
                i.server_name,
            )
            for i in InboundMail.objects.all()
        ),
        "quarantine": sorted(
            (u.inbound.sha256, u.reason) for u in UnprocessedMail.objects.all()
        ),
        "counters": sorted(
            (c.address, c.scope, label(c.record), c.count)
            for c in SenderRateCounter.objects.all()
        ),
    }


def outcomes(results) -> list:
    return [
        (
            r.outcome,
            r.reason,
            [(route.action, route.record.split(":")[0]) for route in r.routes],
        )
        for r in results
    ]


@pytest.fixture
def batch_world(aliases, ticket, bob, make_contact):
    params.set_param(params.LOOP_LIMIT, "2")
    Alias.objects.filter(name="sales").update(contact_policy=Alias.ContactPolicy.KNOWN)
    make_contact(name="Gina Partner", email="gina@partner.example")
    bounced = make_contact(name="Customer 0", email="customer0@client.example")
    Contact.objects.filter(pk=bounced.pk).update(bounce_count=2)
    follow(record=ticket, user=bob)
    return mixed_mailbox(ticket, bob)


def test_batch_routing_equals_routing_one_by_one(batch_world):
    """The same mailbox, routed both ways from the same state, writes the same."""
    server = Server()
    with transaction.atomic():
        one_by_one = [
            route_incoming_messages(raws=[raw], source="imap:1", server=server)[0]
            for raw in batch_world
        ]
        expected = snapshot()
        transaction.set_rollback(True)
    with transaction.atomic():
        batched = route_incoming_messages(
            raws=batch_world, source="imap:1", server=server
        )
        got = snapshot()
        transaction.set_rollback(True)
    assert outcomes(batched) == outcomes(one_by_one)
    assert {o for o, _r, _routes in outcomes(batched)} >= {
        "routed", "duplicate", "refused", "bounce", "quarantined"
    }  # fmt: skip
    for key in expected:
        assert got[key] == expected[key], key
    assert len(got["records"]) > 10


def test_a_run_that_cannot_be_written_is_routed_one_by_one(aliases):
    """A record the database refuses fails the bulk write of its segment: its mail
    is quarantined with the reason, and the other mail of the segment is routed."""
    Alias.objects.filter(name="helpdesk").update(defaults={"priority": None})
    raws = [request(1), request(2, to="helpdesk@example.com"), request(3)]
    results = route_incoming_messages(raws=raws, source="imap:1", server=Server())
    assert [r.outcome for r in results] == ["routed", "quarantined", "routed"]
    assert "priority" in results[1].reason  # NOT NULL
    assert Ticket.objects.count() == 2
    assert InboundMail.objects.count() == 3
    assert UnprocessedMail.objects.get().inbound.subject == "Request 2"


def test_statements_do_not_grow_with_the_run(aliases):
    """A run of new requests costs the same statements for 10 or 40 of them."""

    def statements(numbers: range) -> int:
        raws = [request(n, sender=f"c{n}@client.example") for n in numbers]
        with CaptureQueriesContext(connection) as queries:
            results = route_incoming_messages(
                raws=raws, source="imap:1", server=Server()
            )
        assert {r.outcome for r in results} == {"routed"}
        return len(queries)

    statements(range(5))  # fills the per-process caches (parameters, subtypes)
    assert statements(range(100, 110)) == statements(range(200, 240))
    assert Ticket.objects.count() == 55


@pytest.mark.django_db
def test_a_group_finds_its_senders_users_in_any_case(django_user_model):
    """One read finds every sender's user: the first active one (by pk) whose
    email is the address in any case; an address is not a LIKE pattern."""
    from routing.parsing import parse_message
    from routing.reads import GroupReads

    def mail(sender: str) -> bytes:
        return (
            f"From: <{sender}>\r\nTo: support@mailbox.example\r\n"
            f"Subject: Hi\r\nMessage-ID: <{sender}>\r\n\r\nHello\r\n"
        ).encode()

    make = django_user_model.objects.create_user
    make("gone", email="Ann@Example.COM", is_active=False)
    ann = make("ann", email="ANN@example.com")
    make("ann2", email="ann@example.com")
    bea = make("bea", email="bea@client.example")
    make("pat", email="a_b@client.example")
    senders = ["ann@example.com", "bea@client.example", "axb@client.example"]
    reads = GroupReads([parse_message(mail(s)) for s in senders])
    assert reads.user("ann@example.com") == ann
    assert reads.user("bea@client.example") == bea
    assert reads.user("axb@client.example") is None
    assert reads.user("nobody@client.example") is None
