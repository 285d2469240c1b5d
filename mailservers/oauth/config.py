"""The OAuth client registrations (id, secret, tenant), kept as system parameters.

Secrets are stored encrypted (``knowlix.crypto``) and never shown back in full. The
provider endpoints come from settings (``KNOWLIX_MICROSOFT_AUTHORITY``,
``KNOWLIX_GOOGLE_AUTH_URI``/``TOKEN_URI``) so sovereign clouds and tests can move them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from knowlix import params
from knowlix.crypto import DecryptionError, decrypt, encrypt
from mailservers.errors import OAuthConfigError
from mailservers.oauth.base import ProviderClient
from mailservers.oauth.google import GmailClient
from mailservers.oauth.microsoft import OutlookClient

OUTLOOK, GMAIL = "outlook", "gmail"
OUTLOOK_CLIENT_ID = "mail.oauth.outlook.client_id"
OUTLOOK_CLIENT_SECRET = "mail.oauth.outlook.client_secret"  # encrypted
OUTLOOK_TENANT = "mail.oauth.outlook.tenant"
GMAIL_CLIENT_ID = "mail.oauth.gmail.client_id"
GMAIL_CLIENT_SECRET = "mail.oauth.gmail.client_secret"  # encrypted

_KEYS = {
    OUTLOOK: (OUTLOOK_CLIENT_ID, OUTLOOK_CLIENT_SECRET),
    GMAIL: (GMAIL_CLIENT_ID, GMAIL_CLIENT_SECRET),
}
# Path of each provider's redirect URL, at the site root (register it at the provider).
CONFIRM_PATHS = {OUTLOOK: "/microsoft_outlook/confirm", GMAIL: "/google_gmail/confirm"}


@dataclass(frozen=True)
class ClientConfig:
    provider: str
    client_id: str
    client_secret: str
    tenant: str = ""

    @property
    def is_complete(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def secret_hint(self) -> str:
        """``••••cdef``: enough to recognise a secret, never enough to use it."""
        if not self.client_secret:
            return ""
        return (
            "••••" + self.client_secret[-4:] if len(self.client_secret) > 8 else "••••"
        )


def get_client_config(provider: str) -> ClientConfig:
    id_key, secret_key = _KEYS[provider]
    try:
        secret = decrypt(params.get_param(secret_key) or "")
    except DecryptionError as exc:
        raise OAuthConfigError(exc.user_message) from exc
    tenant = (params.get_param(OUTLOOK_TENANT) or "") if provider == OUTLOOK else ""
    return ClientConfig(
        provider, (params.get_param(id_key) or "").strip(), secret, tenant.strip()
    )


def save_client_config(
    *, provider: str, client_id: str, client_secret: str | None, tenant: str = ""
) -> None:
    """Store a registration; ``client_secret=None`` keeps the stored secret."""
    id_key, secret_key = _KEYS[provider]
    params.set_param(id_key, client_id.strip())
    if client_secret is not None:
        params.set_param(secret_key, encrypt(client_secret.strip()))
    if provider == OUTLOOK:
        params.set_param(OUTLOOK_TENANT, tenant.strip())


def redirect_url(provider: str) -> str:
    """The exact redirect URL to register: ``<KNOWLIX_BASE_URL>/<provider>/confirm``."""
    return settings.KNOWLIX_BASE_URL.rstrip("/") + CONFIRM_PATHS[provider]


def get_client(provider: str) -> ProviderClient:
    """The provider client, built from the stored registration and the settings."""
    config = get_client_config(provider)
    if not config.is_complete:
        raise OAuthConfigError(
            detail=f"{provider}: client id or secret missing in General Settings"
        )
    ca_bundle = settings.KNOWLIX_OAUTH_CA_BUNDLE
    if provider == OUTLOOK:
        return OutlookClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            tenant=config.tenant or "common",
            authority_base=settings.KNOWLIX_MICROSOFT_AUTHORITY,
            ca_bundle=ca_bundle,
        )
    return GmailClient(
        client_id=config.client_id,
        client_secret=config.client_secret,
        auth_uri=settings.KNOWLIX_GOOGLE_AUTH_URI,
        token_uri=settings.KNOWLIX_GOOGLE_TOKEN_URI,
        ca_bundle=ca_bundle,
    )
