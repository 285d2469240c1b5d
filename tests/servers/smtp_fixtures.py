"""pytest fixtures for the loopback SMTP servers (see ``tests/servers/smtp.py``).

Each server starts once per session and is reset for every test. ``smtp_server`` is
plain with AUTH PLAIN/LOGIN (and XOAUTH2 once a test sets ``xoauth2_validator``),
``starttls_server`` requires STARTTLS, ``smtps_server`` speaks implicit TLS; all three
accept ``SMTP_USER``/``SMTP_PASSWORD``. ``smtp_server_process`` runs in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.smtp import SmtpServerProcess, SmtpTestServer
from tests.servers.tls import TestCA

SMTP_USER = "knowlix@example.com"
SMTP_PASSWORD = "correct horse battery"


def _start(**kwargs: object) -> SmtpTestServer:
    return SmtpTestServer(users={SMTP_USER: SMTP_PASSWORD}, **kwargs).start()


@pytest.fixture(scope="session")
def _smtp_plain_session() -> Iterator[SmtpTestServer]:
    server = _start(security="none")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _smtp_starttls_session(test_ca: TestCA) -> Iterator[SmtpTestServer]:
    server = _start(security="starttls", ssl_context=test_ca.server_context())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _smtp_ssl_session(test_ca: TestCA) -> Iterator[SmtpTestServer]:
    server = _start(security="ssl", ssl_context=test_ca.server_context())
    yield server
    server.stop()


def _fresh(server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def smtp_server(_smtp_plain_session: SmtpTestServer) -> Iterator[SmtpTestServer]:
    """Plain SMTP with AUTH on 127.0.0.1, no messages, no faults."""
    yield from _fresh(_smtp_plain_session)


@pytest.fixture
def starttls_server(_smtp_starttls_session: SmtpTestServer) -> Iterator[SmtpTestServer]:
    """SMTP that requires STARTTLS (certificate from the shared test CA)."""
    yield from _fresh(_smtp_starttls_session)


@pytest.fixture
def smtps_server(_smtp_ssl_session: SmtpTestServer) -> Iterator[SmtpTestServer]:
    """SMTP over implicit TLS (certificate from the shared test CA)."""
    yield from _fresh(_smtp_ssl_session)


@pytest.fixture
def smtp_server_process(tmp_path: Path) -> Iterator[SmtpServerProcess]:
    """A plain SMTP server (no AUTH) in a separate process, spooling to ``tmp_path``."""
    server = SmtpServerProcess(tmp_path / "spool").start()
    yield server
    server.stop()


@pytest.fixture
def smtp_ca_settings(settings, test_ca: TestCA):  # noqa: ANN001, ANN201
    """Make Knowlix trust the test CA for SMTP TLS (``KNOWLIX_MAIL_CA_FILE``)."""
    settings.KNOWLIX_MAIL_CA_FILE = str(test_ca.ca_path)
    return settings
