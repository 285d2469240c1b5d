"""Helpers for the OAuth tests: client registrations, grants on the local provider."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from mailservers.models import OAuthGrant
from mailservers.oauth import config
from tests.servers.oauth import OAuthServer
from tests.servers.oauth_fixtures import GMAIL_CLIENT, OUTLOOK_CLIENT

CLIENTS = {"outlook": OUTLOOK_CLIENT, "gmail": GMAIL_CLIENT}


def register_clients() -> None:
    """Store both client registrations as an admin would in General Settings."""
    config.save_client_config(
        provider="outlook",
        client_id=OUTLOOK_CLIENT[0],
        client_secret=OUTLOOK_CLIENT[1],
        tenant="contoso-tenant",
    )
    config.save_client_config(
        provider="gmail", client_id=GMAIL_CLIENT[0], client_secret=GMAIL_CLIENT[1]
    )


def make_grant(
    oauth_server: OAuthServer,
    *,
    provider: str = "gmail",
    address: str = "ops@gmail.example",
    expires_in: dt.timedelta = dt.timedelta(hours=1),
    owner=None,  # noqa: ANN001
) -> OAuthGrant:
    """A connected grant whose tokens the local provider really issued."""
    register_clients()
    access, refresh = oauth_server.issue_tokens(
        address, CLIENTS[provider][0], "https://mail.google.com/"
    )
    return OAuthGrant.objects.create(
        provider=provider,
        account_address=address,
        refresh_token=refresh,
        access_token=access,
        access_token_expires_at=timezone.now() + expires_in,
        last_success_at=timezone.now(),
        owner=owner,
    )
