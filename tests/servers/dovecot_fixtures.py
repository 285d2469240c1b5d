"""pytest fixtures for the real Dovecot server (IMAP, IMAPS, POP3, POP3S on loopback).

- ``dovecot``: the session's server (``DovecotServer``); raises if Dovecot can't start.
- ``dovecot_user``: a fresh user with an empty Maildir per test (isolation without a
  restart); the server is (re)started if a previous test stopped it.
- ``dovecot_factory``: start another instance, e.g. with the OAuth2 passdb:
  ``dovecot_factory(oauth2_introspection_url="http://127.0.0.1:PORT/introspect")``.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.servers.dovecot import DovecotServer
from tests.servers.tls import TestCA

_user_numbers = itertools.count(1)


@dataclass
class DovecotUser:
    """A mailbox on ``server``: deliver with ``append``, inspect with ``status``."""

    server: DovecotServer
    username: str
    password: str

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        self.server.append(self.username, raw, folder)

    def append_many(self, messages, folder: str = "INBOX") -> int:
        return self.server.append_many(self.username, messages, folder)

    def status(self, folder: str = "INBOX") -> dict[str, int]:
        return self.server.folder_status(self.username, folder)

    def seen_uids(self, folder: str = "INBOX") -> list[int]:
        return self.server.seen_uids(self.username, folder)


@pytest.fixture(scope="session")
def dovecot(test_ca: TestCA) -> Iterator[DovecotServer]:
    """The session's Dovecot; fails loudly (never skips) if it cannot start."""
    server = DovecotServer(test_ca)
    server.start()
    yield server
    server.close()


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> DovecotUser:
    """A fresh user with an empty mailbox on the session's Dovecot."""
    dovecot.start()  # no-op unless a previous test stopped it
    username = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    dovecot.add_user(username, password)
    return DovecotUser(dovecot, username, password)


@pytest.fixture(scope="session")
def dovecot_factory(test_ca: TestCA) -> Iterator[Callable[..., DovecotServer]]:
    """Start extra Dovecot instances (e.g. with OAuth2); stopped at the end."""
    started: list[DovecotServer] = []

    def make(*, oauth2_introspection_url: str | None = None) -> DovecotServer:
        server = DovecotServer(
            test_ca, oauth2_introspection_url=oauth2_introspection_url
        )
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def make_incoming_server(db, settings, test_ca):
    """Factory: an ``IncomingServer`` row pointing at a Dovecot user (trusting the
    test CA). ``security`` picks the port: ssl → IMAPS/POP3S, starttls/none → plain."""
    from mailservers.models import IncomingServer

    settings.KNOWLIX_MAIL_CA_FILE = str(test_ca.ca_path)
    settings.KNOWLIX_IMAP_TIMEOUT = 10

    def make(user: DovecotUser, *, kind: str = "imap", security: str = "ssl", **fields):
        server = user.server
        ports = {
            ("imap", "ssl"): server.imaps_port,
            ("imap", "starttls"): server.imap_port,
            ("imap", "none"): server.imap_port,
            ("pop3", "ssl"): server.pop3s_port,
            ("pop3", "starttls"): server.pop3_port,
            ("pop3", "none"): server.pop3_port,
        }
        fields.setdefault("state", IncomingServer.State.CONFIRMED)
        return IncomingServer.objects.create(
            name=fields.pop("name", f"{kind} {user.username}"),
            kind=kind,
            host=server.host,
            port=ports[(kind, security)],
            security=security,
            username=user.username,
            password=user.password,
            **fields,
        )

    return make


def make_mail(n: int, *, size: int = 0, subject: str = "") -> bytes:
    """A small RFC 5322 message ``<msg-N@customer.example>``, padded to ``size``."""
    body = b"Hello %d\r\n" % n + (b"x" * 76 + b"\r\n") * (size // 78)
    return (
        b"From: Dana <dana@customer.example>\r\n"
        b"To: helpdesk@example.com\r\n"
        b"Subject: " + (subject or f"Question {n}").encode() + b"\r\n"
        b"Message-ID: <msg-%d@customer.example>\r\n"
        b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        b"\r\n" % n + body
    )


@pytest.fixture
def stub_routing(monkeypatch, db):
    """Stand-in for ``routing``: one Ticket per message (subject = its Message-ID),
    written inside the poll's transaction like the real pipeline. Returns the
    Ticket manager to count with."""
    from knowlix.models import Ticket
    from mailservers.services import incoming

    def route(*, raw: bytes, server) -> None:
        Ticket.objects.create(subject=incoming.extract_message_id(raw)[:200])

    def route_all(*, raws: list[bytes], server, prepared=None) -> None:
        for raw in raws:
            route(raw=raw, server=server)

    monkeypatch.setattr(incoming, "route_messages", route_all)
    return Ticket.objects
