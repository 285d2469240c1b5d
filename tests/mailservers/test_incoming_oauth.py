"""Outlook OAuth on incoming servers: XOAUTH2 against Dovecot's oauth2 passdb."""

from __future__ import annotations

import secrets

import pytest

from mailservers.models import IncomingServer
from mailservers.services import incoming as service
from tests.mailservers.oauth_helpers import make_grant
from tests.servers.dovecot_fixtures import make_mail


@pytest.fixture
def oauth_dovecot(dovecot_factory, oauth_server):
    """A Dovecot that checks bearer tokens with the local provider."""
    return dovecot_factory(oauth2_introspection_url=oauth_server.introspection_url_http)


@pytest.mark.parametrize(
    ("kind", "port"), [("imap", "imaps_port"), ("pop3", "pop3s_port")]
)
def test_outlook_server_polls_with_grant_token(
    oauth_server, oauth_dovecot, stub_routing, settings, test_ca, kind, port
):
    """An Outlook server logs in with XOAUTH2 (IMAP and POP3) and fetches its mail."""
    settings.KNOWLIX_MAIL_CA_FILE = str(test_ca.ca_path)
    address = f"{kind}-{secrets.token_hex(3)}@contoso.example"
    oauth_dovecot.add_user(address, secrets.token_urlsafe(12))
    oauth_dovecot.append(address, make_mail(1))
    grant = make_grant(oauth_server, provider="outlook", address=address)
    server = IncomingServer.objects.create(
        name="outlook", kind=kind, host=oauth_dovecot.host,
        port=getattr(oauth_dovecot, port), security="ssl", username=address,
        auth_method="outlook", oauth_grant=grant, state="confirmed",
    )  # fmt: skip
    assert service.poll_incoming_server(server=server).stored == 1
    assert stub_routing.count() == 1


def test_outlook_server_without_grant_is_a_config_error(
    dovecot_user, make_incoming_server, stub_routing
):
    """Choosing Outlook without connecting the account says so, precisely."""
    server = make_incoming_server(dovecot_user, auth_method="outlook")
    with pytest.raises(service.MailServerError, match="Connect the Outlook account"):
        service.poll_incoming_server(server=server)
    server.refresh_from_db()
    assert server.state == IncomingServer.State.NEEDS_ATTENTION
