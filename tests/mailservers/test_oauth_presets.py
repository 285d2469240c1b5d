"""The OAuth server rules the server forms apply before saving."""

from __future__ import annotations

import pytest

from mailservers.models import IncomingServer, OAuthGrant, OutgoingServer
from mailservers.oauth.presets import apply_oauth_rules

pytestmark = pytest.mark.django_db


def test_outlook_outgoing_server_gets_preset_and_connected_address():
    """Host/port/security preset, no password, From Filter = the connected address."""
    grant = OAuthGrant.objects.create(
        provider="outlook", account_address="a@contoso.example"
    )
    server = OutgoingServer(
        name="o",
        host="",
        port=25,
        auth_method="outlook",
        password="old-secret",
        from_filter="contoso.example",
        oauth_grant=grant,
    )
    apply_oauth_rules(server, kind="outgoing")
    assert (server.host, server.port, server.security) == (
        "smtp.office365.com",
        587,
        "starttls",
    )
    assert server.password == ""
    assert server.from_filter == server.username == "a@contoso.example"


def test_gmail_incoming_server_preset_and_foreign_grant_dropped():
    """Switching a server to Gmail drops its Outlook grant and presets imap.gmail.com."""
    grant = OAuthGrant.objects.create(
        provider="outlook", account_address="a@contoso.example"
    )
    server = IncomingServer(
        name="i", host="outlook.office365.com", auth_method="gmail", oauth_grant=grant
    )
    changed = apply_oauth_rules(server, kind="incoming")
    assert (server.host, server.port, server.security) == ("imap.gmail.com", 993, "ssl")
    assert server.oauth_grant is None and "oauth_grant" in changed


def test_custom_host_and_password_servers_are_left_alone():
    """A custom host is kept; a password server is not touched at all."""
    server = OutgoingServer(name="p", host="mail.example", auth_method="outlook")
    apply_oauth_rules(server, kind="outgoing")
    assert server.host == "mail.example"
    plain = OutgoingServer(name="p", host="mail.example", password="pw")
    assert apply_oauth_rules(plain, kind="outgoing") == []
    assert plain.password == "pw"


def test_pop3_oauth_server_gets_the_pop3s_port():
    """An Outlook POP3 server is preset to 995, not IMAP's 993."""
    from mailservers.models import IncomingServer
    from mailservers.oauth.presets import apply_oauth_rules

    server = IncomingServer(name="pop", kind="pop3", auth_method="outlook", host="")
    apply_oauth_rules(server, kind="incoming")
    assert (server.host, server.port, server.security) == (
        "outlook.office365.com",
        995,
        "ssl",
    )
