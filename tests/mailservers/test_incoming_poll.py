"""Polling IMAP servers against a real Dovecot: tracking, after-store actions, resync.

Routing is replaced by ``routed`` (``stub_routing`` in dovecot_fixtures: one Ticket
per message, inside the poll's transaction); the end-to-end test through ``routing``
lives in test_incoming_routing.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from knowlix.models import Ticket
from mailservers.models import FetchedMessage, IncomingServer
from mailservers.services import incoming as service
from tests.servers.dovecot_fixtures import make_mail


@pytest.fixture
def routed(stub_routing):
    return stub_routing


def ticket_subjects() -> list[str]:
    return sorted(Ticket.objects.values_list("subject", flat=True))


def test_poll_stores_each_message_once(dovecot_user, make_incoming_server, routed):
    """Two polls of three messages give three records and three ledger rows."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user)
    first = service.poll_incoming_server(server=server)
    second = service.poll_incoming_server(server=server)
    assert (first.stored, second.stored) == (3, 0)
    assert routed.count() == 3
    server.refresh_from_db()
    assert server.last_uid == 3
    assert server.uidvalidity == dovecot_user.status()["UIDVALIDITY"]
    assert FetchedMessage.objects.filter(server=server).count() == 3
    assert server.last_success_at is not None and server.consecutive_failures == 0


def test_poll_catches_up_on_seen_mail_and_new_arrivals(
    dovecot_user, make_incoming_server, routed
):
    """Mail already read in another client is fetched; later arrivals come next poll."""
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    conn = dovecot_user.server.imap_login(dovecot_user.username)
    conn.select("INBOX")
    conn.store("1:*", "+FLAGS", "\\Seen")
    conn.logout()
    server = make_incoming_server(dovecot_user)
    service.poll_incoming_server(server=server)
    dovecot_user.append(make_mail(7))
    service.poll_incoming_server(server=server)
    assert ticket_subjects() == [
        "<msg-0@customer.example>",
        "<msg-1@customer.example>",
        "<msg-7@customer.example>",
    ]


@pytest.mark.parametrize("security", ["starttls", "none"])
def test_poll_over_starttls_and_plain(
    dovecot_user, make_incoming_server, routed, security
):
    """STARTTLS and plain-text connections fetch the same way as SSL."""
    dovecot_user.append(make_mail(1))
    server = make_incoming_server(dovecot_user, security=security)
    assert service.poll_incoming_server(server=server).stored == 1


def test_mark_seen_after_store(dovecot_user, make_incoming_server, routed):
    """With *mark seen*, stored messages are flagged \\Seen on the server."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, after_store="seen")
    service.poll_incoming_server(server=server)
    assert dovecot_user.seen_uids() == [1, 2, 3]
    assert not FetchedMessage.objects.filter(action_pending=True).exists()


def test_keep_leaves_messages_unseen(dovecot_user, make_incoming_server, routed):
    """The default (keep, track by UID) never touches the server's flags."""
    dovecot_user.append(make_mail(1))
    server = make_incoming_server(dovecot_user)
    service.poll_incoming_server(server=server)
    assert dovecot_user.seen_uids() == []


def test_move_after_store(dovecot_user, make_incoming_server, routed):
    """With *move*, stored messages end up in the target folder (created if needed)."""
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    server = make_incoming_server(
        dovecot_user, after_store="move", move_to_folder="Archive"
    )
    service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 0
    assert dovecot_user.status("Archive")["MESSAGES"] == 2


def test_delete_after_store(dovecot_user, make_incoming_server, routed):
    """With *delete*, stored messages are expunged and the next poll finds nothing."""
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    server = make_incoming_server(dovecot_user, after_store="delete")
    service.poll_incoming_server(server=server)
    dovecot_user.append(make_mail(5))
    service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 0
    assert routed.count() == 3


def test_other_folder(dovecot_user, make_incoming_server, routed):
    """The configured folder is polled, not INBOX."""
    dovecot_user.append(make_mail(1))
    dovecot_user.append(make_mail(2), folder="Support")
    server = make_incoming_server(dovecot_user, folder="Support")
    service.poll_incoming_server(server=server)
    assert ticket_subjects() == ["<msg-2@customer.example>"]


def test_uidvalidity_change_does_not_reimport(
    dovecot_user, make_incoming_server, routed
):
    """When the server renumbers the folder, stored mail is recognised, new mail is not."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user)
    service.poll_incoming_server(server=server)
    old_validity = server.uidvalidity
    dovecot_user.server.reset_uidvalidity(dovecot_user.username)
    dovecot_user.append(make_mail(9))
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.known) == (1, 3)
    assert routed.count() == 4
    server.refresh_from_db()
    assert server.uidvalidity != old_validity
    assert FetchedMessage.objects.filter(state=FetchedMessage.State.KNOWN).count() == 3


def test_bounded_batches_cover_sparse_uids(
    dovecot_user, make_incoming_server, routed, monkeypatch
):
    """Small search windows and batches still reach every UID, gaps included."""
    dovecot_user.append_many([make_mail(i) for i in range(12)])
    conn = dovecot_user.server.imap_login(dovecot_user.username)
    conn.select("INBOX")
    conn.uid("STORE", "3:8", "+FLAGS", "(\\Deleted)")
    conn.expunge()
    conn.logout()
    monkeypatch.setattr(service.ImapFetcher, "search_window", 4)
    monkeypatch.setattr(service.ImapFetcher, "batch_messages", 2)
    server = make_incoming_server(dovecot_user)
    assert service.poll_incoming_server(server=server).stored == 6
    assert sorted(FetchedMessage.objects.values_list("uid", flat=True)) == [
        1,
        2,
        9,
        10,
        11,
        12,
    ]


def test_concurrent_poll_is_skipped(dovecot_user, make_incoming_server, routed):
    """While one poll holds the server's lease, another one does nothing."""
    dovecot_user.append(make_mail(1))
    server = make_incoming_server(dovecot_user)
    token = service.claim_poll(server=server)
    assert token is not None
    assert service.poll_incoming_server(server=server).skipped
    assert routed.count() == 0


def test_due_servers_respect_interval_state_and_lease(
    dovecot_user, make_incoming_server
):
    """Beat polls confirmed/flagged servers whose interval passed, never drafts or
    servers being polled."""
    now = timezone.now()
    never = make_incoming_server(dovecot_user, name="never polled")
    stale = make_incoming_server(dovecot_user, name="stale", state="needs_attention")
    fresh = make_incoming_server(dovecot_user, name="fresh")
    draft = make_incoming_server(dovecot_user, name="draft", state="draft")
    busy = make_incoming_server(dovecot_user, name="busy")
    IncomingServer.objects.filter(pk=stale.pk).update(
        last_poll_at=now - dt.timedelta(minutes=6)
    )
    IncomingServer.objects.filter(pk=fresh.pk).update(
        last_poll_at=now - dt.timedelta(minutes=1)
    )
    service.claim_poll(server=busy)
    due = {server.name for server in service.due_servers()}
    assert due == {never.name, stale.name}
    assert draft.name not in due


def test_server_without_uidnext(
    dovecot_user, make_incoming_server, routed, monkeypatch
):
    """UIDNEXT is optional in RFC 3501: without it the last UID bounds the listing."""
    from imapclient import IMAPClient

    original = IMAPClient.select_folder

    def select_without_uidnext(self, folder, readonly=False):
        info = original(self, folder, readonly)
        info.pop(b"UIDNEXT", None)
        return info

    monkeypatch.setattr(IMAPClient, "select_folder", select_without_uidnext)
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user)
    assert service.poll_incoming_server(server=server).stored == 3
    assert service.poll_incoming_server(server=server).stored == 0
