"""Connecting an Outlook 365 or Gmail account to a server (authorization-code flow).

Invariant: ``state`` is signed, expires, and names a pending ``OAuthAuthorization``
row bound to the user and their session; the row is claimed exactly once (an UPDATE
only one request can win), so a forged, foreign or replayed ``state`` is refused
before any code is exchanged. Admins connect any server to any account; anyone else
only reconnects a grant they own, as the same mailbox (:func:`may_reconnect`, checked
again under the row locks when the provider answers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import cast

from django.apps import apps
from django.contrib.auth.models import User
from django.core import signing
from django.db import models, transaction
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from knowlix.users import has_technical_access, is_admin
from mailservers.errors import MailServerError, OAuthConfigError
from mailservers.models.incoming import IncomingServer
from mailservers.models.oauth import OAuthAuthorization, OAuthGrant
from mailservers.models.outgoing import OutgoingServer
from mailservers.oauth import config
from mailservers.oauth.base import TokenResult

STATE_SALT = "mailservers.oauth.state"
STATE_MAX_AGE = 15 * 60  # seconds a user may spend at the provider's consent page
SERVER_MODELS = {"outgoing": "OutgoingServer", "incoming": "IncomingServer"}

MailServer = OutgoingServer | IncomingServer


class OAuthStateRejected(MailServerError):
    """The ``state`` on a confirm request is forged, expired, replayed or not ours."""

    default_message = _(
        "This sign-in link is invalid, expired or was already used. "
        "Start again with “Connect your account” on the server."
    )


class OAuthReconnectRefused(MailServerError):
    """Someone who is not an admin tried more than reconnecting their own account."""

    default_message = _(
        "Only an administrator may connect this server to an account; you may "
        "reconnect only an account you connected yourself."
    )


@dataclass(frozen=True)
class GrantServer:
    """A server using a grant, as its page lists it for one user."""

    kind: str
    server: MailServer
    url: str  # the server's settings page; "" when the user may not open it
    can_reconnect: bool


# --- Servers ---------------------------------------------------------


def hash_session_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def server_model(kind: str) -> type[MailServer]:
    """The server model a ``"outgoing"``/``"incoming"`` kind names."""
    return cast("type[MailServer]", apps.get_model("mailservers", SERVER_MODELS[kind]))


def get_server(*, kind: str, server_id: int) -> MailServer:
    return server_model(kind).objects.get(pk=server_id)


def provider_for(server: models.Model) -> str | None:
    """``"outlook"``/``"gmail"`` when the server authenticates with OAuth, else None."""
    method = getattr(server, "auth_method", "")
    return method if method in config.CONFIRM_PATHS else None


def server_url(server: MailServer, *, fallback: str = "home") -> str:
    """The server's page, or ``fallback`` (a URL name or path) if it has none."""
    try:
        return server.get_absolute_url()
    except NoReverseMatch:
        return resolve_url(fallback)


def may_reconnect(*, user: User, grant: OAuthGrant | None, server: MailServer) -> bool:
    """May ``user`` (re)connect ``server``, whose grant is ``grant``?

    Admins: any server. Its grant's owner: only with the grant's provider (they
    then have to sign in as the grant's mailbox, see :func:`connect_server`).
    """
    if is_admin(user):
        return True
    return (
        grant is not None
        and grant.is_owned_by(user)
        and provider_for(server) == grant.provider
    )


def servers_of_grant(grant: OAuthGrant, *, user: User) -> list[GrantServer]:
    """The outgoing and incoming servers using ``grant``, and what ``user`` may do."""
    opens_servers = has_technical_access(user)
    servers: list[GrantServer] = []
    for kind, related_name in (
        ("outgoing", "outgoing_servers"),
        ("incoming", "incoming_servers"),
    ):
        manager = getattr(grant, related_name, None)
        if manager is None:
            continue
        for server in manager.all():
            url = server_url(server, fallback=grant.get_absolute_url())
            servers.append(
                GrantServer(
                    kind=kind,
                    server=server,
                    url=url if opens_servers else "",
                    can_reconnect=may_reconnect(user=user, grant=grant, server=server),
                )
            )
    return servers


def landing_url(*, user: User, grant: OAuthGrant, server: MailServer) -> str:
    """Where a connected account lands: the server's page for those who may open
    it (admins in developer mode), else the grant's page."""
    if has_technical_access(user):
        return server_url(server, fallback=grant.get_absolute_url())
    return grant.get_absolute_url()


def start_authorization(
    *,
    user: User,
    session_key: str,
    provider: str,
    server_kind: str,
    server_id: int,
) -> str:
    """Record a pending authorization and return the provider URL to redirect to."""
    nonce = secrets.token_urlsafe(24)
    state = signing.dumps({"n": nonce, "u": user.pk}, salt=STATE_SALT)
    start = config.get_client(provider).start_authorization(
        redirect_uri=config.redirect_url(provider), state=state
    )
    OAuthAuthorization.objects.create(
        nonce=nonce,
        user=user,
        session_hash=hash_session_key(session_key),
        provider=provider,
        server_kind=server_kind,
        server_id=server_id,
        flow=start.flow,
    )
    return start.url


def claim_authorization(
    *, user: User, session_key: str, provider: str, state: str
) -> OAuthAuthorization:
    """The pending authorization ``state`` names, consumed; else OAuthStateRejected."""
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise OAuthStateRejected(detail="state expired") from exc
    except signing.BadSignature as exc:
        raise OAuthStateRejected(detail="state signature invalid") from exc
    if not isinstance(payload, dict) or payload.get("u") != user.pk:
        raise OAuthStateRejected(detail="state issued to another user")
    won = OAuthAuthorization.objects.filter(
        nonce=str(payload.get("n")),
        user=user,
        session_hash=hash_session_key(session_key),
        provider=provider,
        consumed_at__isnull=True,
    ).update(consumed_at=timezone.now())
    if won != 1:
        raise OAuthStateRejected(detail="state already used or from another session")
    authorization = OAuthAuthorization.objects.get(nonce=payload["n"])
    flow = authorization.flow
    # The PKCE verifier is needed once: do not keep it.
    OAuthAuthorization.objects.filter(pk=authorization.pk).update(flow={})
    authorization.flow = flow
    return authorization


def complete_authorization(
    *, user: User, session_key: str, provider: str, params: dict[str, str]
) -> tuple[OAuthGrant, MailServer]:
    """Check ``state``, exchange the code, store the grant on the server.

    Raises OAuthStateRejected, or the provider's error (OAuthReconnectRequired when
    consent was declined, OAuthConfigError, OAuthProviderUnavailable).
    """
    authorization = claim_authorization(
        user=user,
        session_key=session_key,
        provider=provider,
        state=params.get("state", ""),
    )
    model = server_model(authorization.server_kind)
    if not model.objects.filter(pk=authorization.server_id).exists():
        raise OAuthStateRejected(
            _(
                "The server was deleted while you were signing in: nothing was connected."
            ),
            detail="server deleted",
        )
    result = config.get_client(provider).exchange_code(
        flow=authorization.flow, params=params
    )
    if not result.refresh_token:
        raise OAuthConfigError(detail="the provider returned no refresh token")
    try:
        return connect_server(
            user=user,
            provider=provider,
            server_kind=authorization.server_kind,
            server_id=authorization.server_id,
            result=result,
        )
    except model.DoesNotExist as exc:
        raise OAuthStateRejected(detail="server deleted during the exchange") from exc


@transaction.atomic
def connect_server(
    *,
    user: User,
    provider: str,
    server_kind: str,
    server_id: int,
    result: TokenResult,
) -> tuple[OAuthGrant, MailServer]:
    """Store fresh tokens on the server's grant (reused on reconnect) and link it.

    Raises OAuthReconnectRefused when ``user`` is not an admin and this is more than
    reconnecting their own grant as the same mailbox (nothing is stored then).
    """
    model = server_model(server_kind)
    server = model.objects.select_for_update().get(pk=server_id)
    grant = None
    if server.oauth_grant_id:
        grant = OAuthGrant.objects.select_for_update().get(pk=server.oauth_grant_id)
    if not is_admin(user):
        _check_owner_reconnect(
            user=user, grant=grant, server=server, provider=provider, result=result
        )
    if grant is None or grant.provider != provider:
        grant = OAuthGrant(provider=provider)
    now = timezone.now()
    grant.owner = user
    grant.account_address = result.account or grant.account_address
    grant.refresh_token = result.refresh_token or grant.refresh_token
    grant.access_token = result.access_token
    grant.access_token_expires_at = result.expires_at
    grant.scope = result.scope
    grant.state = OAuthGrant.State.VALID
    grant.last_error = ""
    grant.last_success_at = now
    grant.save()
    server.oauth_grant = grant
    fields = ["oauth_grant"]
    if grant.account_address:
        # XOAUTH2 names the mailbox; an outgoing server only sends as that address.
        for name in ("username", "from_filter"):
            if hasattr(server, name):
                setattr(server, name, grant.account_address)
                fields.append(name)
    server.save(update_fields=fields)
    return grant, server


def _check_owner_reconnect(
    *,
    user: User,
    grant: OAuthGrant | None,
    server: MailServer,
    provider: str,
    result: TokenResult,
) -> None:
    """A user who is not an admin reconnects their own grant, as its mailbox only:
    another address would repoint the server (its From Filter, its mailbox)."""
    if (
        grant is None
        or grant.provider != provider
        or not may_reconnect(user=user, grant=grant, server=server)
    ):
        raise OAuthReconnectRefused(detail="not the owner of the server's grant")
    if not result.account or result.account.lower() != grant.account_address.lower():
        raise OAuthReconnectRefused(
            gettext(
                "You signed in with another account. To reconnect, sign in as "
                "%(address)s; connecting another mailbox is for administrators."
            )
            % {"address": grant.account_address or "the account's mailbox"},
            detail="signed in as another account than the grant's",
        )


def prune_authorizations(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete pending or used authorizations past any use (their state expired)."""
    deleted, _ = OAuthAuthorization.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
