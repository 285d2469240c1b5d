"""Each way a server can fail gives a precise, user-facing reason (no traceback)."""

from __future__ import annotations

import socket
import threading

import pytest

from mailservers.errors import ServerConfigError, TransientError
from mailservers.models import IncomingServer
from mailservers.services.incoming_connect import check_incoming_server
from tests.servers.net import free_port


def _server(dovecot_user, **fields) -> IncomingServer:
    values = {
        "name": "box", "host": dovecot_user.server.host,
        "port": dovecot_user.server.imaps_port, "security": "ssl",
        "username": dovecot_user.username, "password": dovecot_user.password,
    }  # fmt: skip
    values.update(fields)
    return IncomingServer.objects.create(**values)


def test_unknown_host(dovecot_user, make_incoming_server):
    """A name that does not resolve is a configuration error that says so."""
    server = _server(dovecot_user, host="no-such-host.invalid")
    with pytest.raises(ServerConfigError, match="could not be resolved"):
        check_incoming_server(server=server)


def test_nothing_listening(dovecot_user, make_incoming_server):
    """A closed port is reported as a refused connection (transient)."""
    server = _server(dovecot_user, port=free_port())
    with pytest.raises(TransientError, match="refused the connection"):
        check_incoming_server(server=server)


def test_untrusted_certificate(dovecot_user, make_incoming_server, settings):
    """Without our test CA, Dovecot's certificate is refused, with OpenSSL's reason."""
    settings.KNOWLIX_MAIL_CA_FILE = ""
    server = _server(dovecot_user)
    with pytest.raises(ServerConfigError, match="certificate was refused"):
        check_incoming_server(server=server)


def test_starttls_on_pop3_ssl_port(dovecot_user, make_incoming_server, settings):
    """Plain text spoken to an implicit-TLS port times out with a hint, not hangs."""
    settings.KNOWLIX_IMAP_TIMEOUT = 1
    server = _server(
        dovecot_user,
        kind="pop3",
        port=dovecot_user.server.pop3s_port,
        security="starttls",
    )
    with pytest.raises(TransientError, match="port matches the security setting"):
        check_incoming_server(server=server)


def test_silent_server_times_out(dovecot_user, make_incoming_server, settings):
    """A server that accepts but never greets is cut off by the timeout."""
    settings.KNOWLIX_IMAP_TIMEOUT = 1
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    thread.start()
    try:
        server = _server(dovecot_user, port=listener.getsockname()[1], security="none")
        with pytest.raises(TransientError, match="did not answer in time"):
            check_incoming_server(server=server)
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
    server.refresh_from_db()
    assert "did not answer in time" in server.last_error


def test_missing_folder(dovecot_user, make_incoming_server):
    """A folder that does not exist is named in the error."""
    server = _server(dovecot_user, folder="Nope")
    with pytest.raises(ServerConfigError, match="Nope"):
        check_incoming_server(server=server)


def test_connection_lost_during_login_is_not_an_auth_failure(
    dovecot_user, make_incoming_server, monkeypatch
):
    """A socket dying at LOGIN is transient: the server is not flagged for a bad
    password it does not have."""
    from imapclient import IMAPClient

    original = IMAPClient.login

    def login_on_dead_socket(self, username, password):
        self.socket().shutdown(socket.SHUT_RDWR)
        return original(self, username, password)

    monkeypatch.setattr(IMAPClient, "login", login_on_dead_socket)
    server = make_incoming_server(dovecot_user)
    with pytest.raises(TransientError):
        check_incoming_server(server=server)
    server.refresh_from_db()
    assert server.state == IncomingServer.State.CONFIRMED
