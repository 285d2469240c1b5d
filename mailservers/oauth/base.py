"""What every provider client returns or raises, and its pinned-CA HTTP session.

``requests`` lets ``REQUESTS_CA_BUNDLE`` override a session's ``verify`` path; a
configured ``KNOWLIX_OAUTH_CA_BUNDLE`` must win, so the session below pins it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from django.utils.translation import gettext_lazy as _

from mailservers.errors import (
    OAuthConfigError,
    OAuthProviderUnavailable,
    OAuthReconnectRequired,
)

HTTP_TIMEOUT = 20  # seconds for every call to a provider

# OAuth error codes meaning "this grant is dead, a human must sign in again".
RECONNECT_ERRORS = {"invalid_grant", "interaction_required", "consent_required"}
# The user cancelled or declined at the consent page.
DECLINED_ERRORS = {"access_denied"}
# ... and "our client id/secret is wrong" (e.g. an expired Azure client secret).
CONFIG_ERRORS = {"invalid_client", "unauthorized_client", "invalid_scope"}


@dataclass(frozen=True)
class TokenResult:
    access_token: str
    expires_at: dt.datetime
    refresh_token: str | None  # None when the provider did not rotate it
    account: str | None = None  # the signed-in address, from the id_token
    scope: str = ""


@dataclass(frozen=True)
class AuthorizationStart:
    url: str  # where to send the browser
    flow: dict  # JSON-safe data the confirm step needs (PKCE verifier, nonce)


class ProviderClient(Protocol):
    def start_authorization(
        self, *, redirect_uri: str, state: str
    ) -> AuthorizationStart: ...

    def exchange_code(self, *, flow: dict, params: dict[str, str]) -> TokenResult: ...

    def refresh(self, *, refresh_token: str) -> TokenResult: ...


class PinnedCASession(requests.Session):
    """A session whose ``verify`` is not overridden by ``REQUESTS_CA_BUNDLE``."""

    def __init__(self, ca_bundle: str = "") -> None:
        super().__init__()
        if ca_bundle:
            self.verify = ca_bundle

    def merge_environment_settings(
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
    ) -> dict[str, Any]:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            merged["verify"] = self.verify
        return merged

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def error_for(answer: dict, *, action: str) -> Exception:
    """The Knowlix error for an OAuth error answer (RFC 6749 section 5.2)."""
    code = str(answer.get("error") or "")
    description = str(answer.get("error_description") or "").splitlines()[0:1]
    detail = f"{code}: {description[0]}" if description else code
    if code in DECLINED_ERRORS:
        return OAuthReconnectRequired(
            _("Sign-in was cancelled or consent was declined: nothing was connected."),
            detail=f"{action}: {detail}",
        )
    if code in RECONNECT_ERRORS:
        return OAuthReconnectRequired(detail=f"{action}: {detail}")
    if code in CONFIG_ERRORS:
        return OAuthConfigError(detail=f"{action}: {detail}")
    return OAuthProviderUnavailable(detail=f"{action}: {detail}")


def expiry_from(expires_in: object) -> dt.datetime:
    try:
        seconds = int(expires_in)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        seconds = 3600
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def id_token_claims(id_token: str | None) -> dict:
    """Claims of an id_token received straight from the token endpoint over TLS.

    OpenID Connect Core 3.1.3.7 lets TLS server validation stand in for the
    signature check in that case; we only read the account address from it.
    """
    if not id_token or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def account_from(claims: dict) -> str | None:
    for key in ("email", "preferred_username", "upn"):
        value = claims.get(key)
        if isinstance(value, str) and "@" in value:
            return value.strip().lower()
    return None
