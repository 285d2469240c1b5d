"""End to end: mail in a real Dovecot mailbox becomes records through ``routing``."""

from __future__ import annotations

import logging
from pathlib import Path

from django.contrib.auth.models import User

from knowlix import params
from knowlix.models import Opportunity, Ticket
from knowlix.users import get_profile
from mailservers.services import incoming as service
from routing.models import InboundMail

DATA = Path(__file__).resolve().parents[1] / "data"
NEW_REQUEST = (
    b"From: Dana Customer <dana@customer.example>\r\n"
    b"To: support@acme-mailbox.example\r\n"
    b"Subject: The printer is on fire\r\n"
    b"Message-ID: <fire-1@customer.example>\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Please send help.\r\n"
)


def test_mail_in_mailbox_becomes_a_ticket(dovecot_user, make_incoming_server, groups):
    """A new request in the IMAP inbox is routed once into a Ticket (server default)."""
    dovecot_user.append(NEW_REQUEST)
    server = make_incoming_server(dovecot_user, after_store="seen")
    result = service.poll_incoming_server(server=server)
    assert result.stored == 1
    ticket = Ticket.objects.get()
    assert ticket.subject == "The printer is on fire"
    assert InboundMail.objects.get().source == f"imap:{server.pk}"
    assert dovecot_user.seen_uids() == [1]
    service.poll_incoming_server(server=server)
    assert Ticket.objects.count() == 1


def test_server_default_action_picks_the_record_kind(
    dovecot_user, make_incoming_server, groups
):
    """Unmatched mail on a server set to *create an Opportunity* becomes one (POP3)."""
    dovecot_user.append(NEW_REQUEST.replace(b"fire-1", b"lead-1"))
    server = make_incoming_server(
        dovecot_user, kind="pop3", default_action="knowlix.opportunity"
    )
    service.poll_incoming_server(server=server)
    assert Opportunity.objects.get().title == "The printer is on fire"
    assert not Ticket.objects.exists()


def test_uidvalidity_change_with_real_routing(
    dovecot_user, make_incoming_server, groups
):
    """After the folder is renumbered, routed mail is not routed again."""
    dovecot_user.append(NEW_REQUEST)
    server = make_incoming_server(dovecot_user)
    service.poll_incoming_server(server=server)
    dovecot_user.server.reset_uidvalidity(dovecot_user.username)
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.known) == (0, 1)
    assert Ticket.objects.count() == 1 and InboundMail.objects.count() == 1


def test_a_mixed_mailbox_through_real_routing(
    dovecot_user, make_incoming_server, groups, monkeypatch
):
    """New requests, a reply to one of them, a copy of one, a bounce-like noise and
    bytes that are no mail, in one group: every message gets its outcome, the good
    ones become records, the bad one is quarantined, all are flagged once."""
    from pathlib import Path

    noise = (
        Path(__file__).resolve().parent.parent
        / "data"
        / "corpus"
        / "gen_binary_noise.eml"
    ).read_bytes()
    requests = [
        NEW_REQUEST.replace(b"fire-1", b"fire-%d" % n).replace(
            b"is on fire", b"is on fire %d" % n
        )
        for n in range(4)
    ]
    reply = (
        b"From: Dana Customer <dana@customer.example>\r\n"
        b"To: support@acme-mailbox.example\r\nSubject: Re: fire\r\n"
        b"Message-ID: <fire-reply@customer.example>\r\n"
        b"In-Reply-To: <fire-2@customer.example>\r\n\r\nStill burning.\r\n"
    )
    dovecot_user.append_many([*requests[:3], reply, noise, requests[0], requests[3]])
    server = make_incoming_server(dovecot_user, after_store="seen")
    result = service.poll_incoming_server(server=server)
    counts = (result.stored, result.duplicate, result.quarantined, result.known)
    assert counts == (5, 1, 1, 0)  # each by its outcome, the copy not "stored"
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        f"The printer is on fire {n}" for n in range(4)
    ]
    outcomes = dict(InboundMail.objects.values_list("subject", "outcome"))
    assert outcomes["Re: fire"] == "routed"
    burning = Ticket.objects.get(subject="The printer is on fire 2")
    from feed.models import Message

    assert Message.objects.get(subject="Re: fire").content_object == burning
    quarantined = InboundMail.objects.get(outcome="quarantined")
    assert "no mail headers" in quarantined.reason
    assert quarantined.unprocessed.reason == quarantined.reason
    assert InboundMail.objects.count() == 6  # the copy is recognised, not stored
    assert dovecot_user.seen_uids() == [1, 2, 3, 4, 5, 6, 7]
    assert service.poll_incoming_server(server=server).stored == 0
    assert Ticket.objects.count() == 4


def test_poll_counts_each_outcome_and_logs_no_error(
    dovecot_user, make_incoming_server, groups, admin_client, caplog
):
    """A poll reports stored, duplicate, quarantined and refused mail apart, logs
    none of them as an error, and the server's page shows the counts."""
    params.set_param(params.LOOP_LIMIT, "2")  # a third mail from Dana is refused
    garbage = (DATA / "corpus" / "gen_binary_noise.eml").read_bytes()
    dovecot_user.append_many(
        [
            NEW_REQUEST,
            NEW_REQUEST,  # the same message again: a duplicate
            NEW_REQUEST.replace(b"fire-1", b"fire-2"),
            NEW_REQUEST.replace(b"fire-1", b"fire-3"),
            garbage,
        ]
    )
    server = make_incoming_server(dovecot_user)
    with caplog.at_level(logging.INFO):
        result = service.poll_incoming_server(server=server)
    counts = (result.stored, result.duplicate, result.quarantined, result.refused)
    assert counts == (2, 1, 1, 1)
    assert Ticket.objects.count() == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    server.refresh_from_db()
    assert server.last_poll_counts["duplicate"] == 1
    profile = get_profile(User.objects.get(username="admin"))
    profile.developer_mode = True
    profile.save()
    page = admin_client.get(server.get_absolute_url()).content.decode()
    assert "2 stored, 1 duplicate, 1 quarantined, 1 refused" in page


def test_a_copy_stored_by_another_poll_meanwhile_is_info_not_error(
    dovecot_user, make_incoming_server, groups, caplog, monkeypatch
):
    """Two mailboxes got the same mail and their polls race: the one that finds it
    stored between its check and its insert records a duplicate, logged at INFO,
    without a traceback."""
    from routing import services as routing_services

    routing_services.route_incoming_message(raw=NEW_REQUEST, source="imap:other")
    # Our check ran before the other poll committed: it found nothing.
    monkeypatch.setattr(
        routing_services, "duplicate_reasons", lambda pairs: [""] * len(pairs)
    )
    dovecot_user.append(NEW_REQUEST)
    server = make_incoming_server(dovecot_user)
    with caplog.at_level(logging.INFO):
        result = service.poll_incoming_server(server=server)
    assert (result.stored, result.duplicate) == (0, 1)
    assert InboundMail.objects.count() == 1
    assert any("stored meanwhile" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
