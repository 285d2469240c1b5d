"""System notices (feed.services.notify_users) and opening them from the inbox.

The three real producers are driven end to end: an OAuth grant the local provider
revoked, an incoming server Dovecot refuses, a sending domain whose DNS broke.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.urls import reverse

from dnscheck import notify as dns_notify
from dnscheck import services as dns_services
from dnscheck.models import SendingDomain
from feed import services
from feed.models import Message, Notification
from mailservers.errors import OAuthReconnectRequired, ServerAuthError
from mailservers.models import OAuthGrant
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services import incoming as incoming_service
from mailservers.services import oauth as oauth_service
from mailservers.services.outgoing import process_outbox
from tests.mailservers.oauth_helpers import make_grant
from tests.servers.dns_fixtures import DKIM_SELECTOR, publish_domain

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user):
    """An admin (staff, not superuser) holding no model permission at all."""
    return make_user("sam", group=None, is_staff=True)


@pytest.fixture
def technical_staff(staff):
    """The staff admin with developer mode on (technical pages)."""
    from knowlix.users import get_profile

    profile = get_profile(staff)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    return staff


def revoke_grant(oauth_server, owner=None) -> OAuthGrant:  # noqa: ANN001
    """A grant the provider revoked, found out on the next token refresh, whose
    notice the task that ran the refresh then sent."""
    grant = make_grant(oauth_server, owner=owner, expires_in=dt.timedelta(0))
    oauth_server.revoke_user(grant.account_address)
    with pytest.raises(OAuthReconnectRequired):
        oauth_service.get_access_token(grant)
    send_reconnect_notices()
    return OAuthGrant.objects.get(pk=grant.pk)


def open_notice(client, user, target):  # noqa: ANN001, ANN201
    """The user's notice about ``target``, opened from the inbox (not followed)."""
    note = Notification.objects.get(user=user, message__object_id=target.pk)
    client.force_login(user)
    return note, client.get(reverse("feed:notification-open", args=[note.pk]))


# --- The service ---------------------------------------------------------------------


def test_notify_users_posts_one_sanitized_notice_per_user(
    staff, alice, carol, make_user
):
    """One message on the target; each active user once; the author and the inactive
    are left out; the HTML is sanitized."""
    gone = make_user("gone", is_active=False)
    domain = SendingDomain.objects.create(name="company.com")
    message = services.notify_users(
        target=domain,
        users=[staff, alice, alice, gone, carol],
        author=carol,
        subject="Sending domain company.com: SPF no longer valid",
        body_html='<p onclick="x()">Broken<script>alert(1)</script></p>',
    )
    assert message.content_object == domain
    assert message.kind == Message.Kind.NOTIFICATION
    assert message.body_html == "<p>Broken</p>"
    assert message.body_text.strip() == "Broken"
    notified = set(message.notifications.values_list("user__username", flat=True))
    assert notified == {"sam", "alice"}


def test_notify_users_emails_those_who_prefer_email(
    settings, smtp_server, staff, prefers_email
):
    """A user who prefers email gets the notice by mail: no reply address (a grant has
    no reply token), auto-submitted, linking to the grant's page."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    prefers_email(staff)
    grant = OAuthGrant.objects.create(provider="gmail", account_address="o@gm.example")
    services.notify_users(
        target=grant,
        users=[staff],
        subject="Reconnect Gmail account o@gm.example",
        body_html="<p>Open the account and click <em>Reconnect</em>.</p>",
    )
    assert Notification.objects.get(user=staff).is_emailed
    process_outbox()
    (received,) = smtp_server.received
    assert received.rcpt_tos == [staff.email]
    mail = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert mail["Subject"] == "Reconnect Gmail account o@gm.example"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "reply+" not in (mail["Reply-To"] or "")
    text = mail.get_body(("plain",)).get_content()
    assert "click Reconnect" in text
    assert any(line.endswith(grant.get_absolute_url()) for line in text.splitlines())
    assert "Reply to this email" not in text


# --- Opening from the inbox ------------------------------------------------------------


def test_inbox_opens_oauth_reconnect_notice_for_staff_admin(
    client, oauth_server, staff, alice, carol
):
    """A staff admin and the non-admin owner both land on the grant page (where they
    may reconnect) and the notice is read; anyone else gets a 404, unread."""
    grant = revoke_grant(oauth_server, owner=alice)
    inbox = client_inbox(client, staff)
    assert f"Reconnect Gmail account {grant.account_address}" in inbox
    assert "no longer open" not in inbox
    note, response = open_notice(client, staff, grant)
    assert response.status_code == 302
    assert response["Location"] == grant.get_absolute_url()
    assert client.get(response["Location"]).status_code == 200
    note.refresh_from_db()
    assert note.is_read
    note, response = open_notice(client, alice, grant)
    assert response["Location"] == grant.get_absolute_url()
    assert client.get(response["Location"]).status_code == 200
    note.refresh_from_db()
    assert note.is_read
    services.notify_users(target=grant, users=[carol], subject="x", body_html="x")
    note, response = open_notice(client, carol, grant)
    assert response.status_code == 404
    note.refresh_from_db()
    assert not note.is_read


def test_inbox_opens_incoming_server_notice_for_technical_admin(
    client, dovecot_user, make_incoming_server, technical_staff, alice
):
    """An admin in developer mode lands on the server page; others get a 404."""
    server = make_incoming_server(dovecot_user, name="support box")
    server.password = "wrong"
    server.save(update_fields=["password"])
    with pytest.raises(ServerAuthError):
        incoming_service.poll_incoming_server(server=server)
    assert "support box needs attention" in client_inbox(client, technical_staff)
    note, response = open_notice(client, technical_staff, server)
    assert response.status_code == 302
    assert response["Location"] == server.get_absolute_url()
    assert client.get(response["Location"]).status_code == 200
    note.refresh_from_db()
    assert note.is_read
    services.notify_users(target=server, users=[alice], subject="x", body_html="x")
    assert open_notice(client, alice, server)[1].status_code == 404


def test_incoming_server_notice_opens_for_admins_without_developer_mode(
    client, dovecot_user, make_incoming_server, staff, alice
):
    """Any admin lands on the failing server's page with its reason; others get 404."""
    server = make_incoming_server(dovecot_user, name="support box")
    server.password = "wrong"
    server.save(update_fields=["password"])
    with pytest.raises(ServerAuthError):
        incoming_service.poll_incoming_server(server=server)
    note, response = open_notice(client, staff, server)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200 and "AUTHENTICATIONFAILED" in page.text
    services.notify_users(target=server, users=[alice], subject="x", body_html="x")
    assert open_notice(client, alice, server)[1].status_code == 404


def test_inbox_opens_dns_break_notice_for_staff_admin(
    client, dns_server, dkim_key, staff, alice
):
    """The staff admin lands on the domain's DNS page; a non-admin gets a 404."""
    publish_domain(dns_server, "company.com")
    domain = dns_services.add_sending_domain(name="company.com")
    dns_server.remove(f"{DKIM_SELECTOR}._domainkey.company.com")
    assert dns_notify.recheck_all_domains() == 1
    inbox = client_inbox(client, staff)
    assert "Sending domain company.com: DKIM no longer valid" in inbox
    assert "Sending domain" in inbox and "no longer open" not in inbox
    note, response = open_notice(client, staff, domain)
    assert response.status_code == 302
    assert response["Location"] == domain.get_absolute_url()
    assert client.get(response["Location"]).status_code == 200
    note.refresh_from_db()
    assert note.is_read
    services.notify_users(target=domain, users=[alice], subject="x", body_html="x")
    assert open_notice(client, alice, domain)[1].status_code == 404
    assert "no longer open" in client_inbox(client, alice)


def client_inbox(client, user) -> str:  # noqa: ANN001
    client.force_login(user)
    response = client.get(reverse("feed:inbox"))
    assert response.status_code == 200
    return response.content.decode()
