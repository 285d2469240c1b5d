"""Access tokens: reuse, refresh before expiry, rotation, revocation, concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import nullcontext

import pytest

from feed.models import Notification
from mailservers import oauth_notices
from mailservers.errors import OAuthProviderUnavailable, OAuthReconnectRequired
from mailservers.models import OAuthGrant
from mailservers.services import oauth as services
from mailservers.tasks.oauth import refresh_oauth_grant
from mailservers.tasks.outgoing import process_outbox
from tests.mailservers.oauth_helpers import make_grant

pytestmark = pytest.mark.django_db


def test_fresh_token_is_used_without_calling_the_provider(oauth_server):
    """A token valid beyond the margin is returned as is."""
    grant = make_grant(oauth_server)
    assert services.get_access_token(grant) == grant.access_token
    assert oauth_server.refresh_requests() == []


@pytest.mark.parametrize("provider", ["outlook", "gmail"])
def test_token_near_expiry_is_refreshed_and_rotation_saved(oauth_server, provider):
    """Shortly before expiry the grant is refreshed; the rotated token is stored."""
    grant = make_grant(
        oauth_server, provider=provider, expires_in=dt.timedelta(minutes=2)
    )
    old_refresh = grant.refresh_token
    token = services.get_access_token(grant)
    assert oauth_server.check_xoauth2("ops@gmail.example", token)
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.access_token == token
    assert stored.refresh_token != old_refresh
    assert oauth_server.is_refresh_token_active(stored.refresh_token)
    assert not oauth_server.is_refresh_token_active(old_refresh)
    assert len(oauth_server.refresh_requests()) == 1


def test_refused_token_is_refreshed_once_more(oauth_server):
    """After the mail server refuses a token, get_access_token refreshes it."""
    grant = make_grant(oauth_server)
    first = services.get_access_token(grant)
    oauth_server.revoke(first)  # the server-side session ended early
    second = services.get_access_token(grant, failed_token=first)
    assert second != first
    assert oauth_server.check_xoauth2("ops@gmail.example", second)


def test_revoked_grant_needs_reconnect_and_notifies_owner_and_admins(
    oauth_server, django_user_model
):
    """invalid_grant flags the grant; the layer above then notifies its owner and the
    admins, once."""
    owner = django_user_model.objects.create_user("olga")
    admin = django_user_model.objects.create_user("adam", is_staff=True)
    outsider = django_user_model.objects.create_user("carol")
    grant = make_grant(oauth_server, owner=owner, expires_in=dt.timedelta(0))
    oauth_server.revoke_user("ops@gmail.example")
    with pytest.raises(OAuthReconnectRequired):
        services.get_access_token(grant)
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.NEEDS_RECONNECT
    assert "invalid_grant" in stored.last_error
    assert stored.reconnect_notice_due
    assert Notification.objects.count() == 0  # the token service posts nothing
    assert oauth_notices.send_reconnect_notices() == 1
    notified = set(Notification.objects.values_list("user__username", flat=True))
    assert notified == {"olga", "adam"}
    assert outsider.username not in notified
    assert admin.is_staff
    # Later callers fail fast, without another provider call or notice.
    with pytest.raises(OAuthReconnectRequired):
        services.get_access_token(stored)
    assert len(oauth_server.refresh_requests()) == 1
    assert oauth_notices.send_reconnect_notices() == 0
    assert Notification.objects.count() == 2


def test_provider_down_is_transient_and_keeps_grant_valid(oauth_server, settings):
    """An unreachable token endpoint raises a transient error; the grant stays valid."""
    grant = make_grant(oauth_server, expires_in=dt.timedelta(0))
    settings.KNOWLIX_GOOGLE_TOKEN_URI = "https://127.0.0.1:9/token"
    with pytest.raises(OAuthProviderUnavailable):
        services.get_access_token(grant)
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.VALID
    assert stored.last_error and stored.has_failed_since_success


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("separate_processes", [False, True])
def test_two_workers_refreshing_at_once_refresh_once(
    oauth_server, monkeypatch, separate_processes
):
    """Concurrent refreshes of one grant make one provider call and share its token."""
    if separate_processes:  # no shared in-process lock: only the row lock remains
        monkeypatch.setattr(services, "_grant_lock", lambda grant_id: nullcontext())
    grant = make_grant(oauth_server, provider="outlook", expires_in=dt.timedelta(0))
    oauth_server.state.refresh_delay = 0.3  # keep the first refresh in flight
    tokens: list[str] = []
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            own = OAuthGrant.objects.get(pk=grant.pk)  # each worker loads its own row
            tokens.append(services.get_access_token(own))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(oauth_server.refresh_requests()) == 1
    assert tokens[0] == tokens[1]
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.VALID
    assert oauth_server.is_refresh_token_active(stored.refresh_token)


@pytest.mark.parametrize("provider", ["outlook", "gmail"])
def test_provider_outage_page_is_transient(oauth_server, provider):
    """A 503 HTML page from the token endpoint is transient, never a reconnect."""
    grant = make_grant(oauth_server, provider=provider, expires_in=dt.timedelta(0))
    oauth_server.state.outage = True
    with pytest.raises(OAuthProviderUnavailable):
        services.get_access_token(grant)
    stored = OAuthGrant.objects.get(pk=grant.pk)
    assert stored.state == OAuthGrant.State.VALID
    assert stored.has_failed_since_success
    oauth_server.state.outage = False
    assert oauth_server.check_xoauth2(
        grant.account_address, services.get_access_token(stored)
    )


def test_stale_needs_reconnect_object_sees_the_reconnect(oauth_server):
    """A worker holding an old needs-reconnect copy uses the reconnected grant."""
    grant = make_grant(oauth_server)
    stale = OAuthGrant.objects.get(pk=grant.pk)
    stale.state = OAuthGrant.State.NEEDS_RECONNECT
    assert services.get_access_token(stale) == grant.access_token


def test_keepalive_task_of_a_revoked_grant_notifies_once(
    oauth_server, django_user_model
):
    """The daily refresh task that finds a grant revoked tells its owner, once."""
    owner = django_user_model.objects.create_user("olga")
    grant = make_grant(oauth_server, owner=owner)
    oauth_server.revoke_user("ops@gmail.example")
    refresh_oauth_grant.apply(args=[grant.pk]).get()
    refresh_oauth_grant.apply(args=[grant.pk]).get()
    assert OAuthGrant.objects.get(pk=grant.pk).state == OAuthGrant.State.NEEDS_RECONNECT
    assert list(Notification.objects.values_list("user__username", flat=True)) == [
        "olga"
    ]


def test_outbox_task_tells_of_a_grant_flagged_on_another_path(
    oauth_server, django_user_model
):
    """A flag no task told of yet (a browser's test, a killed worker) goes out with
    the next beat of process_outbox; a grant reconnected meanwhile gets no notice."""
    owner = django_user_model.objects.create_user("olga")
    flagged = make_grant(oauth_server, owner=owner, expires_in=dt.timedelta(0))
    oauth_server.revoke_user("ops@gmail.example")
    with pytest.raises(OAuthReconnectRequired):
        services.get_access_token(flagged)
    fixed = make_grant(oauth_server, address="ops2@gmail.example", owner=owner)
    OAuthGrant.objects.filter(pk=fixed.pk).update(reconnect_notice_due=True)
    process_outbox.apply().get()
    notes = Notification.objects.select_related("message")
    assert [n.message.object_id for n in notes] == [flagged.pk]
    assert not OAuthGrant.objects.filter(reconnect_notice_due=True).exists()
