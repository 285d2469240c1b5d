"""Outlook 365 (Exchange Online) through msal's confidential client.

The authority is ``KNOWLIX_MICROSOFT_AUTHORITY`` + ``/<tenant>`` (``common``,
``organizations`` or a tenant id), so sovereign clouds and the tests' local server
work. msal adds ``openid profile offline_access`` itself; we ask for SMTP and IMAP.
"""

from __future__ import annotations

import warnings

import msal
import requests
from msal.exceptions import MsalServiceError

from mailservers.errors import OAuthConfigError, OAuthProviderUnavailable
from mailservers.oauth.base import (
    HTTP_TIMEOUT,
    AuthorizationStart,
    PinnedCASession,
    TokenResult,
    account_from,
    error_for,
    expiry_from,
    id_token_claims,
)

SCOPES = [
    "https://outlook.office.com/SMTP.Send",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
]
SMTP_HOST, IMAP_HOST = "smtp.office365.com", "outlook.office365.com"


class OutlookClient:
    provider = "outlook"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant: str,
        authority_base: str,
        ca_bundle: str = "",
    ) -> None:
        if not client_id or not client_secret:
            raise OAuthConfigError(detail="Outlook client id or secret is not set")
        self.client_id = client_id
        self.client_secret = client_secret
        self.authority = f"{authority_base.rstrip('/')}/{tenant or 'common'}"
        self.ca_bundle = ca_bundle

    def _app(self) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.client_secret,
                authority=self.authority,
                validate_authority=False,
                instance_discovery=False,
                http_client=PinnedCASession(self.ca_bundle),
                timeout=HTTP_TIMEOUT,
            )
        except (requests.RequestException, MsalServiceError) as exc:
            raise OAuthProviderUnavailable(detail=f"authority: {exc}") from exc
        except ValueError as exc:  # msal: the authority answered nonsense
            raise OAuthConfigError(detail=f"authority {self.authority}: {exc}") from exc

    def start_authorization(
        self, *, redirect_uri: str, state: str
    ) -> AuthorizationStart:
        app = self._app()
        # Query mode on purpose: a cross-site form_post would not carry the Lax
        # session cookie that binds ``state`` to the user's session.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow = app.initiate_auth_code_flow(
                SCOPES, redirect_uri=redirect_uri, state=state, prompt="select_account"
            )
        return AuthorizationStart(url=flow["auth_uri"], flow=flow)

    def exchange_code(self, *, flow: dict, params: dict[str, str]) -> TokenResult:
        if params.get("error"):
            raise error_for(params, action="authorization")
        try:
            answer = self._app().acquire_token_by_auth_code_flow(flow, params)
        except requests.RequestException as exc:
            raise OAuthProviderUnavailable(detail=f"code exchange: {exc}") from exc
        except MsalServiceError as exc:  # an HTTP error page instead of JSON
            raise _service_error(exc, action="code exchange") from exc
        except ValueError as exc:  # msal's own state check (we check before, too)
            raise error_for(
                {"error": "invalid_grant", "error_description": str(exc)},
                action="code exchange",
            ) from exc
        return self._result(answer, action="code exchange")

    def refresh(self, *, refresh_token: str) -> TokenResult:
        try:
            answer = self._app().acquire_token_by_refresh_token(refresh_token, SCOPES)
        except (requests.RequestException, ValueError) as exc:
            raise OAuthProviderUnavailable(detail=f"refresh: {exc}") from exc
        except MsalServiceError as exc:
            raise _service_error(exc, action="refresh") from exc
        return self._result(answer, action="refresh")

    @staticmethod
    def _result(answer: dict, *, action: str) -> TokenResult:
        if "access_token" not in answer:
            raise error_for(answer, action=action)
        claims = answer.get("id_token_claims") or id_token_claims(
            answer.get("id_token")
        )
        return TokenResult(
            access_token=answer["access_token"],
            expires_at=expiry_from(answer.get("expires_in")),
            refresh_token=answer.get("refresh_token") or None,
            account=account_from(claims),
            scope=answer.get("scope", ""),
        )


def _service_error(exc: MsalServiceError, *, action: str) -> Exception:
    answer = {
        "error": getattr(exc, "_error", "") or "server_error",
        "error_description": getattr(exc, "_error_description", "") or str(exc),
    }
    return error_for(answer, action=action)
