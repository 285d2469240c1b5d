"""Outlook and Gmail OAuth on incoming servers: XOAUTH2 against Dovecot's oauth2
passdb, the form's Gmail preset."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from django.urls import reverse

from knowlix.users import get_profile
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


def test_gmail_server_polls_with_a_token_from_the_provider(
    oauth_server, oauth_dovecot, stub_routing, settings, test_ca
):
    """A Gmail IMAP server renews its expired token at the provider, then XOAUTH2."""
    settings.KNOWLIX_MAIL_CA_FILE = str(test_ca.ca_path)
    address = f"gmail-{secrets.token_hex(3)}@gmail.example"
    oauth_dovecot.add_user(address, secrets.token_urlsafe(12))
    oauth_dovecot.append(address, make_mail(1))
    oauth_dovecot.append(address, make_mail(2))
    grant = make_grant(
        oauth_server, provider="gmail", address=address, expires_in=-dt.timedelta(1)
    )
    stale = grant.access_token
    server = IncomingServer.objects.create(
        name="gmail", host=oauth_dovecot.host, port=oauth_dovecot.imaps_port,
        security="ssl", username=address, auth_method="gmail", oauth_grant=grant,
        state="confirmed",
    )  # fmt: skip
    assert service.poll_incoming_server(server=server).stored == 2
    assert stub_routing.count() == 2
    grant.refresh_from_db()
    assert grant.access_token != stale
    assert [r.outcome for r in oauth_server.refresh_requests()] == ["ok"]
    assert grant.access_token in oauth_server.state.introspections  # Dovecot asked


def test_gmail_server_without_grant_is_a_config_error(
    dovecot_user, make_incoming_server, stub_routing
):
    """Choosing Gmail without connecting the account says so, precisely."""
    server = make_incoming_server(dovecot_user, auth_method="gmail")
    with pytest.raises(service.MailServerError, match="Connect the Gmail account"):
        service.poll_incoming_server(server=server)


def test_gmail_form_presets_imap_gmail_and_offers_connect(client, admin_user):
    """The incoming form saves a Gmail OAuth server on imap.gmail.com:993 SSL, with
    no password, and its page offers "Connect your Gmail account"."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    client.force_login(admin_user)
    form = client.get(reverse("mailservers:incoming-create"))
    assert "Gmail OAuth" in form.content.decode()
    data = {
        "name": "Gmail", "kind": "imap", "host": "", "security": "starttls",
        "auth_method": "gmail", "username": "", "password": "ignored",
        "folder": "INBOX", "after_store": "keep", "default_action": "knowlix.ticket",
        "poll_interval_minutes": 5,
    }  # fmt: skip
    response = client.post(reverse("mailservers:incoming-create"), data, follow=True)
    server = IncomingServer.objects.get()
    assert (server.host, server.port, server.security) == ("imap.gmail.com", 993, "ssl")
    assert server.password == ""
    body = response.content.decode()
    assert "Connect your Gmail account" in body
    # The password row stays for a switch to a password method; the page's script
    # hides it while a sign-in method is chosen (tests/ui/test_server_form_ui.py).
    edit = client.get(reverse("mailservers:incoming-edit", args=[server.pk]))
    assert "data-password-field" in edit.content.decode()
