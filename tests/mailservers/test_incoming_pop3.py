"""Polling POP3 servers against a real Dovecot: UIDL tracking and delete-after-commit."""

from __future__ import annotations

import socket

import pytest

from mailservers.errors import ServerAuthError, TransientError
from mailservers.models import FetchedMessage
from mailservers.services import incoming as service
from tests.servers.dovecot_fixtures import make_mail


class Crash(BaseException):
    """Stands for the process dying between commit and DELE."""


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_pop3_tracks_uidls(dovecot_user, make_incoming_server, stub_routing, security):
    """Kept messages are fetched once; a later arrival is the only new one."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, kind="pop3", security=security)
    assert service.poll_incoming_server(server=server).stored == 3
    dovecot_user.append(make_mail(3))
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.known) == (1, 3)
    assert stub_routing.count() == 4
    assert FetchedMessage.objects.exclude(uidl="").count() == 4
    assert dovecot_user.status()["MESSAGES"] == 4


def test_pop3_delete_after_store(dovecot_user, make_incoming_server, stub_routing):
    """With *delete*, the maildrop is empty after the poll's QUIT."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, kind="pop3", after_store="delete")
    service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 0
    assert not FetchedMessage.objects.filter(action_pending=True).exists()


def test_pop3_crash_before_delete_never_reimports(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """Dying after the commit but before DELE: the next poll deletes, routes nothing."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, kind="pop3", after_store="delete")

    def die(self, uidls, **kwargs):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(service.Pop3Fetcher, "apply_after_store", die)
        with pytest.raises(Crash):
            service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 3
    assert FetchedMessage.objects.filter(action_pending=True).count() == 3
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.known) == (0, 3)
    assert stub_routing.count() == 3
    assert dovecot_user.status()["MESSAGES"] == 0


def test_pop3_connection_lost_before_quit_keeps_mail(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """DELE only takes effect at QUIT: a connection lost before it deletes nothing,
    and the next poll deletes the stored messages without storing them again."""
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    server = make_incoming_server(dovecot_user, kind="pop3", after_store="delete")
    original_quit = service.Pop3Fetcher.quit

    def lose_connection(self):
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        return original_quit(self)

    with monkeypatch.context() as patch:
        patch.setattr(service.Pop3Fetcher, "quit", lose_connection)
        with pytest.raises(TransientError):
            service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 2
    assert FetchedMessage.objects.filter(action_pending=True).count() == 2
    service.poll_incoming_server(server=server)
    assert stub_routing.count() == 2
    assert dovecot_user.status()["MESSAGES"] == 0


def test_pop3_wrong_password(dovecot_user, make_incoming_server, stub_routing):
    """A refused POP3 login is an auth error stored on the server."""
    server = make_incoming_server(dovecot_user, kind="pop3")
    server.password = "nope"
    server.save(update_fields=["password"])
    with pytest.raises(ServerAuthError):
        service.poll_incoming_server(server=server)
    server.refresh_from_db()
    assert server.state == server.State.NEEDS_ATTENTION
    assert "Authentication failed" in server.last_error


def test_pop3_oversize_left_on_server(
    dovecot_user, make_incoming_server, stub_routing, settings
):
    """Above the cap a POP3 message is recorded from its headers (TOP) and kept."""
    settings.KNOWLIX_INCOMING_MAX_BYTES = 20_000
    dovecot_user.append(make_mail(1, size=40_000, subject="Big one"))
    dovecot_user.append(make_mail(2))
    server = make_incoming_server(dovecot_user, kind="pop3", after_store="delete")
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.oversize) == (1, 1)
    assert "Big one" in FetchedMessage.objects.get(state="oversize").summary
    assert dovecot_user.status()["MESSAGES"] == 1


def test_locked_maildrop_is_temporary_not_an_auth_failure():
    """A POP3 "[IN-USE]" or IMAP "[UNAVAILABLE]" refusal is retried, never flagged as
    a bad password."""
    from mailservers.incoming import auth_error

    assert isinstance(auth_error(b"-ERR [IN-USE] Mailbox is locked"), TransientError)
    assert isinstance(
        auth_error("b'[UNAVAILABLE] Temporary authentication failure.'"), TransientError
    )
    assert isinstance(auth_error("b'[AUTHENTICATIONFAILED] no'"), ServerAuthError)
