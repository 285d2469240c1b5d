"""A revoked grant's notice, page and Reconnect, for its owner, other users and admins.

The owner (who connected the account) may open the grant's page and reconnect it, as
the same mailbox only; the servers' settings stay admin-only; anyone else gets 404.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from feed.models import Notification
from mailservers.models import OAuthGrant, OutgoingServer
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services import oauth as token_services
from mailservers.services.oauth_connect import server_url
from tests.mailservers.oauth_helpers import make_grant
from tests.mailservers.test_oauth_connect import connect, make_technical_admin

pytestmark = pytest.mark.django_db

ADDRESS = "ops@gmail.example"


@pytest.fixture
def olga(django_user_model):
    """A colleague, not an admin, who connected the Gmail account."""
    return django_user_model.objects.create_user("olga")


@pytest.fixture
def root(django_user_model):
    return make_technical_admin(django_user_model)


@pytest.fixture
def revoked(oauth_server, olga, root, settings):
    """olga's Gmail grant behind an outgoing server, revoked at the provider and
    flagged by a refresh, its notices sent."""
    settings.KNOWLIX_BASE_URL = "http://testserver"
    grant = make_grant(oauth_server, owner=olga, expires_in=dt.timedelta(0))
    server = OutgoingServer.objects.create(
        name="Sales Gmail",
        host="smtp.gmail.com",
        auth_method="gmail",
        oauth_grant=grant,
        username=ADDRESS,
        from_filter=ADDRESS,
    )
    oauth_server.revoke_user(ADDRESS)
    with pytest.raises(token_services.OAuthReconnectRequired):
        token_services.get_access_token(grant)
    send_reconnect_notices()  # what the task that ran the refresh does next
    grant.refresh_from_db()
    assert grant.state == OAuthGrant.State.NEEDS_RECONNECT
    return grant, server


def logged_in(user) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    return client


def open_notice(client: Client, user) -> str:  # noqa: ANN001
    """Open the user's notice from the inbox; return the page it lands on."""
    note = Notification.objects.get(user=user)
    answer = client.get(f"/feed/inbox/{note.pk}/open/")
    assert answer.status_code == 302, answer.status_code
    return answer["Location"]


def test_owner_opens_the_notice_and_reconnects_the_same_mailbox(
    revoked, olga, oauth_server, test_ca
):
    """Owner: notice → grant page → Reconnect → sign in → valid again, back on the page."""
    grant, server = revoked
    client = logged_in(olga)
    inbox = client.get("/feed/inbox/").content.decode()
    assert f"Reconnect Gmail account {ADDRESS}" in inbox
    landing = open_notice(client, olga)
    assert landing == grant.get_absolute_url()
    page = client.get(landing)
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/oauth/connect/outgoing/{server.pk}/" in html
    assert f'href="{server_url(server)}"' not in html  # server settings: admins only
    oauth_server.login_as(ADDRESS)
    answer = client.get(connect(client, "outgoing", server, test_ca))
    assert answer.status_code == 302
    assert answer["Location"] == grant.get_absolute_url()
    again = OAuthGrant.objects.get(pk=grant.pk)
    assert again.state == OAuthGrant.State.VALID and again.owner == olga
    assert oauth_server.is_refresh_token_active(again.refresh_token)
    assert token_services.get_access_token(again) == again.access_token
    server.refresh_from_db()
    assert server.oauth_grant_id == grant.pk and server.from_filter == ADDRESS
    assert "connected." in client.get(answer["Location"]).content.decode()


def test_owner_signing_in_as_another_mailbox_changes_nothing(
    revoked, olga, oauth_server, test_ca
):
    """The owner may not repoint the server: another account is refused, 403."""
    grant, server = revoked
    client = logged_in(olga)
    oauth_server.login_as("someone-else@gmail.example")
    answer = client.get(connect(client, "outgoing", server, test_ca))
    assert answer.status_code == 403
    assert f"sign in as {ADDRESS}" in answer.content.decode()
    assert "Outlook and Gmail</a>" not in answer.content.decode()  # admin-only link
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.NEEDS_RECONNECT
    assert stored.refresh_token == grant.refresh_token
    server.refresh_from_db()
    assert server.from_filter == server.username == ADDRESS
    assert OAuthGrant.objects.count() == 1


def test_owner_who_lost_the_grant_meanwhile_cannot_finish(
    revoked, olga, root, oauth_server, test_ca
):
    """Ownership is checked again when the provider answers, not only at the start."""
    grant, server = revoked
    client = logged_in(olga)
    confirm_url = connect(client, "outgoing", server, test_ca)
    OAuthGrant.objects.filter(pk=grant.pk).update(owner=root)
    oauth_server.login_as(ADDRESS)
    assert client.get(confirm_url).status_code == 403
    assert OAuthGrant.objects.get(pk=grant.pk).state == OAuthGrant.State.NEEDS_RECONNECT


def test_other_users_see_no_grant_and_cannot_reconnect(
    revoked, django_user_model, olga
):
    """Someone else who is not an admin: no notice, and 404 on the page and Reconnect."""
    grant, server = revoked
    carol = django_user_model.objects.create_user("carol")
    client = logged_in(carol)
    assert not Notification.objects.filter(user=carol).exists()
    assert client.get(grant.get_absolute_url()).status_code == 404
    connect_url = f"/settings/technical/email/oauth/connect/outgoing/{server.pk}/"
    assert client.post(connect_url).status_code == 404
    assert client.get(connect_url).status_code == 404
    # The owner may reconnect but not open the server's settings page (403).
    assert logged_in(olga).get(connect_url).status_code == 403


def test_reconnect_needs_csrf_and_post(revoked, olga):
    """Reconnect is a POST with the CSRF token; GET on the grant page changes nothing."""
    grant, server = revoked
    client = Client(enforce_csrf_checks=True)
    client.force_login(olga)
    connect_url = f"/settings/technical/email/oauth/connect/outgoing/{server.pk}/"
    assert client.post(connect_url).status_code == 403
    assert client.post(grant.get_absolute_url()).status_code in (403, 405)


def test_owner_cannot_reconnect_with_another_provider(revoked, olga):
    """A server switched to Outlook needs an admin: no button, and POST is 403."""
    grant, server = revoked
    OutgoingServer.objects.filter(pk=server.pk).update(auth_method="outlook")
    client = logged_in(olga)
    page = client.get(grant.get_absolute_url()).content.decode()
    assert f"/oauth/connect/outgoing/{server.pk}/" not in page
    assert "an administrator has to connect it" in page
    connect_url = f"/settings/technical/email/oauth/connect/outgoing/{server.pk}/"
    assert client.post(connect_url).status_code == 403


def test_admin_opens_the_notice_and_reconnects(revoked, root, oauth_server, test_ca):
    """An admin gets the notice too, opens the page with server links, reconnects."""
    grant, server = revoked
    client = logged_in(root)
    landing = open_notice(client, root)
    html = client.get(landing).content.decode()
    assert f'href="{server_url(server)}"' in html
    oauth_server.login_as(ADDRESS)
    answer = client.get(connect(client, "outgoing", server, test_ca))
    assert answer["Location"] == server_url(server)
    again = OAuthGrant.objects.get(pk=grant.pk)
    assert again.state == OAuthGrant.State.VALID and again.owner == root


def test_notice_goes_only_to_those_who_can_open_it(
    oauth_server, django_user_model, root
):
    """Recipients are the active admins and the active owner, each able to open it."""
    gone = django_user_model.objects.create_user("gone", is_active=False)
    django_user_model.objects.create_user("carol")
    grant = make_grant(oauth_server, owner=gone, expires_in=dt.timedelta(0))
    oauth_server.revoke_user(ADDRESS)
    with pytest.raises(token_services.OAuthReconnectRequired):
        token_services.get_access_token(grant)
    send_reconnect_notices()
    notified = list(
        django_user_model.objects.filter(knowlix_notifications__isnull=False)
    )
    assert [u.username for u in notified] == ["root"]
    for user in django_user_model.objects.all():
        assert grant.can_be_opened_by(user) == (user in notified)
