"""Gmail through google-auth-oauthlib (authorization) and google-auth (refresh).

Endpoints come from ``KNOWLIX_GOOGLE_AUTH_URI``/``KNOWLIX_GOOGLE_TOKEN_URI``. We ask
for ``https://mail.google.com/`` (SMTP and IMAP) plus ``openid email`` to learn the
connected address, offline access and a forced consent so Google returns a refresh
token on every connect.
"""

from __future__ import annotations

import datetime as dt

import google.auth.exceptions
import requests
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2 import OAuth2Error

from mailservers.errors import OAuthConfigError, OAuthProviderUnavailable
from mailservers.oauth.base import (
    AuthorizationStart,
    PinnedCASession,
    TokenResult,
    account_from,
    error_for,
    expiry_from,
    id_token_claims,
)

SCOPES = [
    "https://mail.google.com/",
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
]
SMTP_HOST, IMAP_HOST = "smtp.gmail.com", "imap.gmail.com"


class GmailClient:
    provider = "gmail"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_uri: str,
        token_uri: str,
        ca_bundle: str = "",
    ) -> None:
        if not client_id or not client_secret:
            raise OAuthConfigError(detail="Gmail client id or secret is not set")
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_uri = auth_uri
        self.token_uri = token_uri
        self.ca_bundle = ca_bundle

    def _flow(self, redirect_uri: str, code_verifier: str | None = None) -> Flow:
        config = {
            "web": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "redirect_uris": [redirect_uri],
            }
        }
        return Flow.from_client_config(
            config,
            scopes=SCOPES,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )

    def start_authorization(
        self, *, redirect_uri: str, state: str
    ) -> AuthorizationStart:
        flow = self._flow(redirect_uri)
        url, _ = flow.authorization_url(
            access_type="offline", prompt="consent", state=state
        )
        return AuthorizationStart(
            url=url,
            flow={"redirect_uri": redirect_uri, "code_verifier": flow.code_verifier},
        )

    def exchange_code(self, *, flow: dict, params: dict[str, str]) -> TokenResult:
        if params.get("error"):
            raise error_for(params, action="authorization")
        oauth_flow = self._flow(flow["redirect_uri"], flow.get("code_verifier"))
        extra = {"verify": self.ca_bundle} if self.ca_bundle else {}
        try:
            token = oauth_flow.fetch_token(code=params.get("code", ""), **extra)
        except OAuth2Error as exc:
            answer = {"error": exc.error, "error_description": exc.description}
            raise error_for(answer, action="code exchange") from exc
        except requests.RequestException as exc:
            raise OAuthProviderUnavailable(detail=f"code exchange: {exc}") from exc
        return TokenResult(
            access_token=token["access_token"],
            expires_at=expiry_from(token.get("expires_in")),
            refresh_token=token.get("refresh_token") or None,
            account=account_from(id_token_claims(token.get("id_token"))),
            scope=" ".join(token.get("scope") or []),
        )

    def refresh(self, *, refresh_token: str) -> TokenResult:
        credentials = Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=self.token_uri,
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
        try:
            credentials.refresh(Request(session=PinnedCASession(self.ca_bundle)))
        except google.auth.exceptions.RefreshError as exc:
            answer = exc.args[1] if len(exc.args) > 1 else None
            if not isinstance(answer, dict):
                answer = {"error": "server_error", "error_description": str(exc)}
            raise error_for(answer, action="refresh") from exc
        except google.auth.exceptions.TransportError as exc:
            raise OAuthProviderUnavailable(detail=f"refresh: {exc}") from exc
        expiry = credentials.expiry  # naive UTC in google-auth
        expires_at = expiry.replace(tzinfo=dt.UTC) if expiry else expiry_from(None)
        rotated = credentials.refresh_token
        return TokenResult(
            access_token=credentials.token or "",
            expires_at=expires_at,
            refresh_token=rotated if rotated and rotated != refresh_token else None,
        )
