"""SMTP AUTH XOAUTH2 and IMAP AUTHENTICATE XOAUTH2 with grant tokens, real servers."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from mailservers.backends.smtp import SmtpConnection, SmtpParams
from mailservers.errors import OAuthReconnectRequired, ServerAuthError
from mailservers.incoming import ConnectionSettings
from mailservers.incoming.imap import ImapFetcher
from mailservers.models import OAuthGrant
from mailservers.services.oauth import with_fresh_token
from tests.mailservers.oauth_helpers import make_grant

pytestmark = pytest.mark.django_db

RAW = b"From: sales@contoso.example\r\nTo: bob@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"


def send_through(server, grant, ca):  # noqa: ANN001, ANN201
    """Send RAW via ``server`` with XOAUTH2, refreshing once on a refusal."""

    def attempt(token):  # noqa: ANN001, ANN202
        params = SmtpParams(
            host=server.host,
            port=server.port,
            security="starttls",
            username=grant.account_address,
            token=token,
            ca_file=str(ca.ca_path),
        )
        with SmtpConnection(params) as connection:
            return connection.send(
                mail_from=grant.account_address, recipients=["bob@example.org"], raw=RAW
            )

    return with_fresh_token(grant, attempt)


@pytest.fixture
def oauth_smtp(starttls_server, oauth_server):
    starttls_server.xoauth2_validator = oauth_server.check_xoauth2
    return starttls_server


def test_smtp_xoauth2_sends_with_the_grant_token(oauth_server, oauth_smtp, test_ca):
    """A valid grant authenticates with XOAUTH2 and the server receives the bytes."""
    grant = make_grant(
        oauth_server, provider="outlook", address="sales@contoso.example"
    )
    results = send_through(oauth_smtp, grant, test_ca)
    assert all(r.ok for r in results.values())
    assert oauth_smtp.logins == ["sales@contoso.example"]
    received = oauth_smtp.received[0]
    assert b"Hello" in received.raw and received.login == "sales@contoso.example"
    assert oauth_server.refresh_requests() == []


def test_smtp_expired_token_is_refreshed_before_connecting(
    oauth_server, oauth_smtp, test_ca
):
    """An access token about to expire is renewed first: one refresh, one login."""
    grant = make_grant(
        oauth_server, address="ops@gmail.example", expires_in=dt.timedelta(seconds=30)
    )
    send_through(oauth_smtp, grant, test_ca)
    assert len(oauth_server.refresh_requests()) == 1
    assert oauth_smtp.logins == ["ops@gmail.example"] and len(oauth_smtp.received) == 1


def test_smtp_refused_token_is_refreshed_once_and_retried(
    oauth_server, oauth_smtp, test_ca
):
    """The server refuses a token Knowlix thought valid: refresh once, send."""
    grant = make_grant(oauth_server, address="ops@gmail.example")
    oauth_server.revoke(grant.access_token)
    send_through(oauth_smtp, grant, test_ca)
    assert len(oauth_server.refresh_requests()) == 1
    assert len(oauth_smtp.received) == 1
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert oauth_server.check_xoauth2("ops@gmail.example", stored.access_token)


def test_smtp_revoked_grant_needs_reconnect_and_sends_nothing(
    oauth_server, oauth_smtp, test_ca
):
    """Consent withdrawn: the send fails as needs-reconnect, nothing is delivered."""
    grant = make_grant(oauth_server, address="ops@gmail.example")
    oauth_server.revoke_user("ops@gmail.example")
    with pytest.raises(OAuthReconnectRequired):
        send_through(oauth_smtp, grant, test_ca)
    assert oauth_smtp.received == []
    assert OAuthGrant.objects.get(pk=grant.pk).state == "needs_reconnect"


def test_smtp_refusing_even_a_fresh_token_is_recorded(
    oauth_server, oauth_smtp, test_ca
):
    """A mailbox without SMTP AUTH refuses every token: the reason lands on the grant."""
    grant = make_grant(oauth_server, address="ops@gmail.example")
    oauth_smtp.xoauth2_validator = lambda user, token: False
    with pytest.raises(ServerAuthError):
        send_through(oauth_smtp, grant, test_ca)
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.VALID
    assert stored.last_error and stored.has_failed_since_success
    assert len(oauth_server.refresh_requests()) == 1


@pytest.fixture
def oauth_dovecot(dovecot_factory, oauth_server):
    """A Dovecot whose oauth2 passdb asks the local provider (RFC 7662)."""
    return dovecot_factory(oauth2_introspection_url=oauth_server.introspection_url_http)


def fetch_all(dovecot, grant, ca) -> list[bytes]:  # noqa: ANN001
    def attempt(token):  # noqa: ANN001, ANN202
        settings = ConnectionSettings(
            host="127.0.0.1",
            port=dovecot.imaps_port,
            security="ssl",
            username=grant.account_address,
            token_provider=token,
            ssl_context=ca.client_context(),
        )
        with ImapFetcher(settings) as fetcher:
            return [m.raw for batch in fetcher.iter_batches(after_uid=0) for m in batch]

    return with_fresh_token(grant, attempt)


def test_imap_xoauth2_fetches_with_the_grant_token(
    oauth_server, oauth_dovecot, test_ca
):
    """Dovecot accepts the grant's token through introspection; the mail is fetched."""
    address = f"box-{secrets.token_hex(3)}@contoso.example"
    oauth_dovecot.add_user(address, secrets.token_urlsafe(12))
    oauth_dovecot.append(address, RAW)
    grant = make_grant(oauth_server, provider="outlook", address=address)
    assert fetch_all(oauth_dovecot, grant, test_ca) == [RAW]
    assert grant.access_token in oauth_server.state.introspections


def test_imap_refused_token_is_refreshed_once(oauth_server, oauth_dovecot, test_ca):
    """Dovecot refuses a dead token; the grant refreshes once and the fetch succeeds."""
    address = f"box-{secrets.token_hex(3)}@contoso.example"
    oauth_dovecot.add_user(address, secrets.token_urlsafe(12))
    oauth_dovecot.append(address, RAW)
    grant = make_grant(oauth_server, address=address)
    oauth_server.revoke(grant.access_token)
    assert fetch_all(oauth_dovecot, grant, test_ca) == [RAW]
    assert len(oauth_server.refresh_requests()) == 1


def test_imap_revoked_grant_needs_reconnect(oauth_server, oauth_dovecot, test_ca):
    """Revoked consent: IMAP login fails as needs-reconnect, the mail stays unread."""
    address = f"box-{secrets.token_hex(3)}@contoso.example"
    oauth_dovecot.add_user(address, secrets.token_urlsafe(12))
    oauth_dovecot.append(address, RAW)
    grant = make_grant(oauth_server, address=address)
    oauth_server.revoke_user(address)
    with pytest.raises(OAuthReconnectRequired):
        fetch_all(oauth_dovecot, grant, test_ca)
    assert OAuthGrant.objects.get(pk=grant.pk).state == "needs_reconnect"
    assert oauth_dovecot.seen_uids(address) == []


def test_smtp_accepting_again_clears_the_red_status(oauth_server, oauth_smtp, test_ca):
    """Once the mailbox accepts tokens again, the grant stops showing the refusal."""
    grant = make_grant(oauth_server, address="ops@gmail.example")
    oauth_smtp.xoauth2_validator = lambda user, token: False
    with pytest.raises(ServerAuthError):
        send_through(oauth_smtp, grant, test_ca)
    oauth_smtp.xoauth2_validator = oauth_server.check_xoauth2
    grant = OAuthGrant.objects.get(pk=grant.pk)
    send_through(oauth_smtp, grant, test_ca)
    assert not OAuthGrant.objects.get(pk=grant.pk).has_failed_since_success
