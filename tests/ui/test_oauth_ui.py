"""Browser: register the OAuth clients, connect Outlook and Gmail, use them, reconnect.

Chromium talks to the live server and to the local HTTPS provider (test CA, so its
context ignores certificate errors for that host only in effect: loopback).
"""

from __future__ import annotations

import secrets

import pytest

from feed.models import Notification
from knowlix.users import get_profile
from mailservers.backends.smtp import SmtpConnection, SmtpParams
from mailservers.errors import OAuthReconnectRequired
from mailservers.incoming import ConnectionSettings
from mailservers.incoming.imap import ImapFetcher
from mailservers.models import IncomingServer, OAuthGrant, OutgoingServer
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services.oauth import with_fresh_token
from tests.servers.oauth_fixtures import GMAIL_CLIENT, OUTLOOK_CLIENT

pytestmark = pytest.mark.browser

RAW = b"From: sales@contoso.example\r\nTo: bob@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"


@pytest.fixture
def provider_page(browser, live_server, settings):
    """A page whose context accepts the local provider's test-CA certificate."""
    settings.KNOWLIX_BASE_URL = live_server.url
    context = browser.new_context(base_url=live_server.url, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def send_mail(server: OutgoingServer, ca) -> None:  # noqa: ANN001
    def attempt(token):  # noqa: ANN001, ANN202
        params = SmtpParams(
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            token=token,
            ca_file=str(ca.ca_path),
        )
        with SmtpConnection(params) as connection:
            connection.send(
                mail_from=server.username, recipients=["bob@example.org"], raw=RAW
            )

    with_fresh_token(server.oauth_grant, attempt)


def fetch_mail(server: IncomingServer, ca) -> list[bytes]:  # noqa: ANN001
    def attempt(token):  # noqa: ANN001, ANN202
        settings = ConnectionSettings(
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            token_provider=token,
            ssl_context=ca.client_context(),
        )
        with ImapFetcher(settings) as fetcher:
            return [m.raw for batch in fetcher.iter_batches(after_uid=0) for m in batch]

    return with_fresh_token(server.oauth_grant, attempt)


def test_admin_connects_outlook_and_gmail_and_reconnects_after_revocation(
    provider_page,
    admin_user,
    oauth_server,
    starttls_server,
    dovecot_factory,
    test_ca,
    settings,
    smtp_ca_settings,
):
    """Client ids, two connects, XOAUTH2 send and fetch, revocation, reconnect."""
    page = provider_page
    starttls_server.xoauth2_validator = oauth_server.check_xoauth2
    dovecot = dovecot_factory(
        oauth2_introspection_url=oauth_server.introspection_url_http
    )
    gmail_box = f"ops-{secrets.token_hex(3)}@gmail.example"
    dovecot.add_user(gmail_box, secrets.token_urlsafe(12))
    dovecot.append(gmail_box, RAW)

    admin_user.set_password("pw-admin")
    admin_user.save()
    profile = get_profile(admin_user)  # server pages are Technical pages
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    page.goto("/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", "pw-admin")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)

    # 1. General Settings › Outlook and Gmail: the client registrations.
    page.click("summary:has-text('Settings')")
    page.click("text=General Settings")
    page.click("text=Outlook and Gmail (OAuth client ids)")
    page.fill("input[name=outlook_client_id]", OUTLOOK_CLIENT[0])
    page.fill("input[name=outlook_client_secret]", OUTLOOK_CLIENT[1])
    page.fill("input[name=outlook_tenant]", "contoso-tenant")
    page.fill("input[name=gmail_client_id]", GMAIL_CLIENT[0])
    page.fill("input[name=gmail_client_secret]", GMAIL_CLIENT[1])
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=OAuth client registrations saved.")
    urls = page.locator("code.redirect-url").all_inner_texts()
    assert urls == [
        f"{settings.KNOWLIX_BASE_URL}/microsoft_outlook/confirm",
        f"{settings.KNOWLIX_BASE_URL}/google_gmail/confirm",
    ]
    assert OUTLOOK_CLIENT[1] not in page.content()

    # 2. An Outlook outgoing server through its own form, from the preset.
    page.click("summary:has-text('Settings')")
    page.click("text=Outgoing Mail Servers")
    page.click("a:has-text('Outlook 365')")
    assert page.input_value("input[name=server-host]") == "smtp.office365.com"
    page.fill("input[name=server-host]", starttls_server.host)  # our loopback Outlook
    page.fill("input[name=server-port]", str(starttls_server.port))
    page.select_option("select[name=server-auth_method]", "outlook")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Outlook 365 saved.")
    outgoing = OutgoingServer.objects.get()
    assert page.inner_text(".oauth-status") == "Not connected"
    oauth_server.login_as("sales@contoso.example")
    page.click("button:has-text('Connect your Outlook account')")
    page.wait_for_selector("text=account sales@contoso.example connected.")
    assert page.url.endswith(outgoing.get_absolute_url())
    assert page.inner_text(".oauth-status") == "Outlook Token Valid"
    outgoing.refresh_from_db()
    assert outgoing.from_filter == "sales@contoso.example"
    assert "sales@contoso.example" in page.inner_text("[data-test=server-detail]")
    page.click("#test-connection")
    page.wait_for_selector("text=the server accepted the login")
    assert starttls_server.logins == ["sales@contoso.example"]
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-oauth-outgoing.png"), full_page=True
    )

    # ... and a Gmail incoming server through its own form (our loopback Gmail).
    page.click("summary:has-text('Settings')")
    page.click("text=Incoming Mail Servers")
    page.click("a:has-text('New server')")
    page.fill("input[name=name]", "Gmail")
    page.select_option("select[name=auth_method]", "gmail")
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=port]", str(dovecot.imaps_port))
    page.fill("input[name=username]", gmail_box)
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=saved. Test the connection to confirm it.")
    incoming = IncomingServer.objects.get()
    assert page.url.endswith(incoming.get_absolute_url())
    assert page.inner_text(".oauth-status") == "Not connected"
    oauth_server.login_as(gmail_box)
    page.click("button:has-text('Connect your Gmail account')")
    page.wait_for_selector(f"text=account {gmail_box} connected.")
    assert page.inner_text(".oauth-status") == "Gmail Token Valid"
    page.click("#test-connection")  # IMAP XOAUTH2 login from the server's page
    page.wait_for_selector("text=Connection OK: 1 messages in INBOX")

    # 3. Send through SMTP XOAUTH2 and fetch through IMAP XOAUTH2.
    outgoing.refresh_from_db()
    incoming.refresh_from_db()
    assert outgoing.from_filter == "sales@contoso.example"
    send_mail(outgoing, test_ca)
    assert starttls_server.received[-1].login == "sales@contoso.example"
    assert fetch_mail(incoming, test_ca) == [RAW]

    # 4. Consent withdrawn for Gmail: the UI says what to do; Outlook keeps working.
    oauth_server.revoke_user(gmail_box)
    OAuthGrant.objects.filter(pk=incoming.oauth_grant_id).update(access_token="")
    incoming.refresh_from_db()
    with pytest.raises(OAuthReconnectRequired):
        fetch_mail(incoming, test_ca)
    send_reconnect_notices()  # what the poll task does after a failed poll
    assert Notification.objects.filter(user=admin_user).exists()
    page.goto(incoming.get_absolute_url())
    assert page.inner_text(".oauth-status") == "Gmail: reconnect needed"
    assert "reconnect the account" in page.inner_text(".oauth-box")
    send_mail(outgoing, test_ca)
    assert len(starttls_server.received) == 2  # Outlook unaffected

    # 5. One click on Reconnect, sign in again: valid, and the fetch works.
    page.click("button.oauth-connect:has-text('Reconnect')")
    page.wait_for_selector(f"text=account {gmail_box} connected.")
    assert page.inner_text(".oauth-status") == "Gmail Token Valid"
    incoming.refresh_from_db()
    assert fetch_mail(incoming, test_ca) == [RAW]
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-oauth.png"), full_page=True)
