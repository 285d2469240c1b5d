"""Grant status as the server forms and the grant page show it; the keep-alive task."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from mailservers.models import OAuthGrant, OutgoingServer
from mailservers.tasks.oauth import keep_oauth_grants_alive, refresh_oauth_grant
from tests.mailservers.oauth_helpers import make_grant

pytestmark = pytest.mark.django_db


def status_html(server: OutgoingServer) -> str:
    return render_to_string(
        "mailservers/oauth/_server_status.html", {"server": server, "kind": "outgoing"}
    )


def test_valid_grant_shows_token_valid_in_green_with_expiry():
    """A valid grant: green *Outlook Token Valid* and the access token's expiry."""
    expiry = timezone.now() + dt.timedelta(minutes=40)
    grant = OAuthGrant.objects.create(
        provider="outlook",
        account_address="a@contoso.example",
        refresh_token="rt",
        access_token="at",
        access_token_expires_at=expiry,
        last_success_at=timezone.now(),
    )
    server = OutgoingServer.objects.create(
        name="o", host="smtp.office365.com", auth_method="outlook", oauth_grant=grant
    )
    html = status_html(server)
    assert 'badge badge-ok oauth-status">Outlook Token Valid' in html
    assert timezone.localtime(expiry).strftime("%Y-%m-%d %H:%M") in html
    assert "Reconnect" in html


def test_failed_grant_shows_the_failure_in_red():
    """A grant that needs reconnecting shows why, in red, with Reconnect."""
    grant = OAuthGrant.objects.create(
        provider="gmail",
        account_address="g@gmail.example",
        state=OAuthGrant.State.NEEDS_RECONNECT,
        last_error="invalid_grant: Token has been expired or revoked.",
        last_error_at=timezone.now(),
    )
    server = OutgoingServer.objects.create(
        name="g", host="smtp.gmail.com", auth_method="gmail", oauth_grant=grant
    )
    html = status_html(server)
    assert "badge-err" in html and "Token has been expired or revoked." in html
    assert "Token Valid" not in html


def test_unconnected_server_offers_connect_button():
    """An OAuth server without a grant offers *Connect your Gmail account*."""
    server = OutgoingServer.objects.create(name="g", host="h", auth_method="gmail")
    assert "Connect your Gmail account" in status_html(server)
    password = OutgoingServer.objects.create(name="p", host="h")
    assert status_html(password).strip() == ""


def test_grant_page_lists_servers_with_reconnect(client, django_user_model):
    """The page a needs-reconnect notice links to offers Reconnect per server."""
    client.force_login(django_user_model.objects.create_user("root", is_staff=True))
    grant = OAuthGrant.objects.create(
        provider="outlook",
        account_address="a@contoso.example",
        state=OAuthGrant.State.NEEDS_RECONNECT,
        last_error="revoked",
        last_error_at=timezone.now(),
    )
    server = OutgoingServer.objects.create(
        name="Sales", host="h", auth_method="outlook", oauth_grant=grant
    )
    page = client.get(grant.get_absolute_url()).content.decode()
    assert "Sales" in page and "sign in as <strong>a@contoso.example</strong>" in page
    assert f"/oauth/connect/outgoing/{server.pk}/" in page


def test_keep_alive_task_refreshes_stale_grants_only(oauth_server, settings):
    """The daily task renews grants unused for a week; recent ones are left alone."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from knowlix.celery import app

    app.conf.task_always_eager = True
    stale = make_grant(oauth_server, address="old@gmail.example")
    fresh = make_grant(oauth_server, address="new@gmail.example")
    OAuthGrant.objects.filter(pk=stale.pk).update(
        last_success_at=timezone.now() - dt.timedelta(days=30)
    )
    try:
        keep_oauth_grants_alive()
    finally:
        app.conf.task_always_eager = False
    assert len(oauth_server.refresh_requests()) == 1
    renewed = OAuthGrant.objects.get(pk=stale.pk)
    assert renewed.last_success_at > timezone.now() - dt.timedelta(minutes=1)
    assert renewed.refresh_token != stale.refresh_token
    assert OAuthGrant.objects.get(pk=fresh.pk).refresh_token == fresh.refresh_token


def test_refresh_task_on_revoked_grant_records_and_returns(oauth_server):
    """A revoked grant is flagged by the task, which ends without retrying."""
    grant = make_grant(oauth_server)
    oauth_server.revoke_user(grant.account_address)
    refresh_oauth_grant.apply(args=[grant.pk]).get()
    assert OAuthGrant.objects.get(pk=grant.pk).state == OAuthGrant.State.NEEDS_RECONNECT


def test_needs_reconnect_notice_shows_in_the_admin_inbox(
    client, django_user_model, oauth_server
):
    """The notice is in the inbox; its body links to the Reconnect page."""
    admin = django_user_model.objects.create_user(
        "root", is_staff=True, is_superuser=True
    )
    grant = make_grant(oauth_server, owner=admin, expires_in=dt.timedelta(0))
    oauth_server.revoke_user(grant.account_address)
    refresh_oauth_grant.apply(args=[grant.pk]).get()
    client.force_login(admin)
    inbox = client.get("/feed/inbox/")
    assert inbox.status_code == 200
    assert f"Reconnect Gmail account {grant.account_address}" in inbox.content.decode()
    body = admin.knowlix_notifications.get().message.body_html
    assert f'href="{grant.get_absolute_url()}"' in body
