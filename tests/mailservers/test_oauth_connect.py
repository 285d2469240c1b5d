"""Connect your account: the authorization-code flow through the confirm endpoints."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from knowlix.users import get_profile
from mailservers.models import (
    IncomingServer,
    OAuthAuthorization,
    OAuthGrant,
    OutgoingServer,
)
from mailservers.services.oauth_connect import server_url
from tests.mailservers.oauth_helpers import register_clients

pytestmark = pytest.mark.django_db


def make_technical_admin(user_model: type[User], username: str = "root") -> User:
    """An admin in developer mode: server pages are Technical pages."""
    user = user_model.objects.create_user(username, is_staff=True)
    profile = get_profile(user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    return user


@pytest.fixture
def admin(django_user_model):
    """An admin in developer mode: server pages are Technical pages."""
    return make_technical_admin(django_user_model)


@pytest.fixture
def admin_client(client, admin, settings):
    settings.KNOWLIX_BASE_URL = "http://testserver"
    client.force_login(admin)
    return client


def outgoing(auth_method: str) -> OutgoingServer:
    return OutgoingServer.objects.create(
        name=f"{auth_method} out", host="smtp.example", auth_method=auth_method
    )


def connect(client, kind: str, server, ca) -> str:
    """Click Connect, approve at the provider; return the confirm URL it sends back."""
    answer = client.post(f"/settings/technical/email/oauth/connect/{kind}/{server.pk}/")
    assert answer.status_code == 302, answer.content
    at_provider = requests.get(
        answer["Location"], verify=str(ca.ca_path), allow_redirects=False, timeout=10
    )
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    return f"{back.path}?{back.query}"


@pytest.mark.parametrize(
    ("auth_method", "confirm_path"),
    [("outlook", "/microsoft_outlook/confirm"), ("gmail", "/google_gmail/confirm")],
)
def test_connect_stores_encrypted_tokens_and_forces_from_filter(
    admin_client, admin, oauth_server, test_ca, auth_method, confirm_path
):
    """The confirm endpoint stores the grant and binds the server to the address."""
    register_clients()
    oauth_server.login_as("Sales@Contoso.example")
    server = outgoing(auth_method)
    confirm_url = connect(admin_client, "outgoing", server, test_ca)
    assert confirm_url.startswith(confirm_path + "?")
    answer = admin_client.get(confirm_url)
    assert answer.status_code == 302
    server.refresh_from_db()
    grant = server.oauth_grant
    assert answer["Location"] == server_url(server, fallback=grant.get_absolute_url())
    assert grant.provider == auth_method and grant.owner == admin
    assert grant.state == OAuthGrant.State.VALID
    assert grant.account_address == "sales@contoso.example"
    assert server.from_filter == server.username == "sales@contoso.example"
    assert oauth_server.check_xoauth2("sales@contoso.example", grant.access_token)
    assert oauth_server.is_refresh_token_active(grant.refresh_token)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token, access_token FROM mailservers_oauthgrant WHERE id = %s",
            [grant.pk],
        )
        raw_refresh, raw_access = cursor.fetchone()
    assert raw_refresh.startswith("fernet:") and grant.refresh_token not in raw_refresh
    assert raw_access.startswith("fernet:")


def test_replayed_state_is_refused(admin_client, oauth_server, test_ca):
    """The same confirm URL works once; a replay gets a clear page, no exchange."""
    register_clients()
    server = outgoing("gmail")
    confirm_url = connect(admin_client, "outgoing", server, test_ca)
    assert admin_client.get(confirm_url).status_code == 302
    exchanges = len(oauth_server.state.token_requests)
    replay = admin_client.get(confirm_url)
    assert replay.status_code == 400
    assert "already used" in replay.content.decode()
    assert len(oauth_server.state.token_requests) == exchanges


def test_forged_state_is_refused(admin_client, oauth_server, test_ca):
    """A state that was not signed by Knowlix is refused before any exchange."""
    register_clients()
    server = outgoing("outlook")
    confirm_url = connect(admin_client, "outgoing", server, test_ca)
    query = parse_qs(urlsplit(confirm_url).query)
    forged = query["state"][0][:-3] + "abc"
    answer = admin_client.get(
        "/microsoft_outlook/confirm", {"code": query["code"][0], "state": forged}
    )
    assert answer.status_code == 400
    assert 'id="oauth-error"' in answer.content.decode()
    assert oauth_server.state.token_requests == []
    server.refresh_from_db()
    assert server.oauth_grant is None


def test_state_from_another_session_is_refused(
    admin_client, django_user_model, oauth_server, test_ca
):
    """A confirm URL opened in another admin's session does not connect anything."""
    register_clients()
    server = outgoing("gmail")
    confirm_url = connect(admin_client, "outgoing", server, test_ca)
    other = Client()
    other.force_login(django_user_model.objects.create_user("eve", is_staff=True))
    assert other.get(confirm_url).status_code == 400
    assert OAuthGrant.objects.count() == 0
    assert OAuthAuthorization.objects.get().consumed_at is None


def test_declined_consent_shows_what_to_do(admin_client, oauth_server, test_ca):
    """access_denied at the provider renders the error page, the server is unchanged."""
    register_clients()
    oauth_server.state.deny_consent = True
    server = outgoing("outlook")
    answer = admin_client.get(connect(admin_client, "outgoing", server, test_ca))
    assert answer.status_code == 400
    assert "Connect your account" in answer.content.decode()
    assert OAuthGrant.objects.count() == 0


def test_missing_client_secret_keeps_admin_on_the_server(admin_client, oauth_server):
    """Connect without client registrations explains where to enter them."""
    server = outgoing("gmail")
    answer = admin_client.post(
        f"/settings/technical/email/oauth/connect/outgoing/{server.pk}/", follow=True
    )
    assert "General Settings" in answer.content.decode()
    assert oauth_server.state.codes == {}


def test_reconnect_reuses_the_grant_of_an_incoming_server(
    admin_client, oauth_server, test_ca
):
    """Reconnecting after needs-reconnect refreshes the same grant row."""
    register_clients()
    oauth_server.login_as("box@contoso.example")
    server = IncomingServer.objects.create(
        name="in", host="imap.example", username="x", auth_method="outlook"
    )
    admin_client.get(connect(admin_client, "incoming", server, test_ca))
    grant = IncomingServer.objects.get(pk=server.pk).oauth_grant
    OAuthGrant.objects.filter(pk=grant.pk).update(
        state=OAuthGrant.State.NEEDS_RECONNECT
    )
    admin_client.get(connect(admin_client, "incoming", server, test_ca))
    again = IncomingServer.objects.get(pk=server.pk).oauth_grant
    assert again.pk == grant.pk and again.state == OAuthGrant.State.VALID
    assert again.refresh_token != grant.refresh_token


def test_server_deleted_during_sign_in_is_a_clear_page(
    admin_client, oauth_server, test_ca
):
    """Deleting the server while its admin is at the provider never gives a 500."""
    register_clients()
    server = outgoing("gmail")
    confirm_url = connect(admin_client, "outgoing", server, test_ca)
    server.delete()
    answer = admin_client.get(confirm_url)
    assert answer.status_code == 400
    assert "deleted while you were signing in" in answer.content.decode()
    assert OAuthGrant.objects.count() == 0
