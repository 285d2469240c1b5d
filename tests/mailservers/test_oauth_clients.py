"""The provider clients (msal, google-auth-oauthlib) against the local OAuth server."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mailservers.errors import OAuthConfigError, OAuthReconnectRequired
from mailservers.oauth.google import GmailClient
from mailservers.oauth.microsoft import OutlookClient
from tests.servers.oauth_fixtures import GMAIL_CLIENT, OUTLOOK_CLIENT

REDIRECT = "http://testserver/microsoft_outlook/confirm"


def outlook(server, ca, secret: str = OUTLOOK_CLIENT[1]) -> OutlookClient:
    return OutlookClient(
        client_id=OUTLOOK_CLIENT[0],
        client_secret=secret,
        tenant="contoso-tenant",
        authority_base=server.base_url,
        ca_bundle=str(ca.ca_path),
    )


def gmail(server, ca) -> GmailClient:
    return GmailClient(
        client_id=GMAIL_CLIENT[0],
        client_secret=GMAIL_CLIENT[1],
        auth_uri=server.base_url + "/o/oauth2/auth",
        token_uri=server.base_url + "/token",
        ca_bundle=str(ca.ca_path),
    )


def follow_consent(url: str, ca) -> dict[str, str]:
    """What a browser does at the provider: land on the redirect with ?code&state."""
    answer = requests.get(
        url, verify=str(ca.ca_path), allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    return {
        k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()
    }


def test_outlook_code_flow_returns_tokens_and_address(oauth_server, test_ca):
    """msal exchanges the code (PKCE) for both tokens and the signed-in address."""
    oauth_server.login_as("Sales@Contoso.example")
    client = outlook(oauth_server, test_ca)
    start = client.start_authorization(redirect_uri=REDIRECT, state="st-1")
    assert start.url.startswith(
        oauth_server.base_url + "/contoso-tenant/oauth2/v2.0/authorize"
    )
    params = follow_consent(start.url, test_ca)
    assert params["state"] == "st-1"
    result = client.exchange_code(flow=start.flow, params=params)
    assert result.account == "sales@contoso.example"
    assert oauth_server.check_xoauth2("sales@contoso.example", result.access_token)
    assert oauth_server.is_refresh_token_active(result.refresh_token)
    assert result.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)


def test_outlook_refresh_rotates_refresh_token(oauth_server, test_ca):
    """A refresh returns a new access token and the rotated refresh token."""
    client = outlook(oauth_server, test_ca)
    start = client.start_authorization(redirect_uri=REDIRECT, state="s")
    first = client.exchange_code(
        flow=start.flow, params=follow_consent(start.url, test_ca)
    )
    second = client.refresh(refresh_token=first.refresh_token)
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert not oauth_server.is_refresh_token_active(first.refresh_token)
    assert oauth_server.check_xoauth2("alice@example.com", second.access_token)


def test_outlook_revoked_refresh_token_needs_reconnect(oauth_server, test_ca):
    """invalid_grant from the token endpoint becomes OAuthReconnectRequired."""
    client = outlook(oauth_server, test_ca)
    start = client.start_authorization(redirect_uri=REDIRECT, state="s")
    first = client.exchange_code(
        flow=start.flow, params=follow_consent(start.url, test_ca)
    )
    oauth_server.revoke_user("alice@example.com")
    with pytest.raises(OAuthReconnectRequired) as info:
        client.refresh(refresh_token=first.refresh_token)
    assert "invalid_grant" in info.value.detail


def test_outlook_wrong_secret_is_a_config_error(oauth_server, test_ca):
    """A refused client secret (expired in Azure) is a configuration error."""
    client = outlook(oauth_server, test_ca, secret="expired")
    start = client.start_authorization(redirect_uri=REDIRECT, state="s")
    with pytest.raises(OAuthConfigError):
        client.exchange_code(flow=start.flow, params=follow_consent(start.url, test_ca))


def test_gmail_code_flow_and_refresh(oauth_server, test_ca):
    """google-auth-oauthlib exchanges the code; google-auth refreshes with rotation."""
    oauth_server.login_as("ops@gmail.example")
    client = gmail(oauth_server, test_ca)
    start = client.start_authorization(redirect_uri=REDIRECT, state="g-1")
    query = parse_qs(urlsplit(start.url).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    params = follow_consent(start.url, test_ca)
    result = client.exchange_code(flow=start.flow, params=params)
    assert result.account == "ops@gmail.example"
    refreshed = client.refresh(refresh_token=result.refresh_token)
    assert refreshed.refresh_token not in (None, result.refresh_token)
    assert oauth_server.check_xoauth2("ops@gmail.example", refreshed.access_token)
    assert refreshed.expires_at.tzinfo is not None


def test_gmail_refresh_without_rotation_keeps_token(oauth_server, test_ca):
    """When Google does not rotate, the client reports no new refresh token."""
    oauth_server.state.rotate_refresh_tokens = False
    access, refresh = oauth_server.issue_tokens("x@gmail.example", GMAIL_CLIENT[0], "s")
    result = gmail(oauth_server, test_ca).refresh(refresh_token=refresh)
    assert result.refresh_token is None
    assert result.access_token != access


def test_gmail_revoked_needs_reconnect(oauth_server, test_ca):
    """A revoked Gmail refresh token raises OAuthReconnectRequired."""
    _, refresh = oauth_server.issue_tokens("x@gmail.example", GMAIL_CLIENT[0], "s")
    oauth_server.revoke(refresh)
    with pytest.raises(OAuthReconnectRequired):
        gmail(oauth_server, test_ca).refresh(refresh_token=refresh)


def test_declined_consent_needs_reconnect(oauth_server, test_ca):
    """access_denied on the redirect is reported, nothing is exchanged."""
    oauth_server.state.deny_consent = True
    client = gmail(oauth_server, test_ca)
    start = client.start_authorization(redirect_uri=REDIRECT, state="s")
    params = follow_consent(start.url, test_ca)
    with pytest.raises(Exception) as info:
        client.exchange_code(flow=start.flow, params=params)
    assert "access_denied" in info.value.detail
    assert oauth_server.state.token_requests == []
