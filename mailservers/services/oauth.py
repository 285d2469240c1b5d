"""OAuth grants for Outlook 365 and Gmail: connect an account, keep its tokens alive.

Invariants:
- ``state`` is signed, expires, and names a pending ``OAuthAuthorization`` row that
  is bound to the user and their session and claimed exactly once (an UPDATE that
  only one request can win): a forged or replayed ``state`` is refused.
- A grant's tokens change only under its row lock (``select_for_update``, plus a
  per-process lock for threads), and the locked row is re-read first: when another
  worker already refreshed, its token is used. Rotated refresh tokens are saved in
  the same transaction as the access token they came with.
- ``invalid_grant`` flags the grant *needs reconnect* once and notifies its owner and
  the admins; every caller then gets ``OAuthReconnectRequired``, never a crash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailservers.errors import (
    MailServerError,
    OAuthConfigError,
    OAuthProviderUnavailable,
    OAuthReconnectRequired,
)
from mailservers.models.oauth import OAuthAuthorization, OAuthGrant
from mailservers.oauth import config
from mailservers.oauth.base import TokenResult
from mailservers.services import oauth_notify

logger = logging.getLogger(__name__)

# Refresh this long before the provider's expiry (clock skew, a slow SMTP dialogue).
REFRESH_MARGIN = dt.timedelta(minutes=5)
STATE_SALT = "mailservers.oauth.state"
STATE_MAX_AGE = 15 * 60  # seconds a user may spend at the provider's consent page
SERVER_MODELS = {"outgoing": "OutgoingServer", "incoming": "IncomingServer"}


class OAuthStateRejected(MailServerError):
    """The ``state`` on a confirm request is forged, expired, replayed or not ours."""

    default_message = _(
        "This sign-in link is invalid, expired or was already used. "
        "Start again with “Connect your account” on the server."
    )


# --- Connecting an account ---------------------------------------------------------


def hash_session_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def get_server(*, kind: str, server_id: int) -> models.Model:
    model = apps.get_model("mailservers", SERVER_MODELS[kind])
    return model.objects.get(pk=server_id)


def provider_for(server: models.Model) -> str | None:
    """``"outlook"``/``"gmail"`` when the server authenticates with OAuth, else None."""
    method = getattr(server, "auth_method", "")
    return method if method in config.CONFIRM_PATHS else None


def server_url(server: models.Model) -> str:
    return server.get_absolute_url()


def servers_of_grant(grant: OAuthGrant) -> list[tuple[str, models.Model]]:
    """``(kind, server)`` for the outgoing and incoming servers that use ``grant``."""
    servers: list[tuple[str, models.Model]] = []
    for kind, related_name in (
        ("outgoing", "outgoing_servers"),
        ("incoming", "incoming_servers"),
    ):
        manager = getattr(grant, related_name, None)
        if manager is not None:
            servers.extend((kind, server) for server in manager.all())
    return servers


def start_authorization(
    *,
    user: AbstractBaseUser,
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
    *, user: AbstractBaseUser, session_key: str, provider: str, state: str
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
    *, user: AbstractBaseUser, session_key: str, provider: str, params: dict[str, str]
) -> tuple[OAuthGrant, models.Model]:
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
    result = config.get_client(provider).exchange_code(
        flow=authorization.flow, params=params
    )
    if not result.refresh_token:
        raise OAuthConfigError(detail="the provider returned no refresh token")
    return connect_server(
        user=user,
        provider=provider,
        server_kind=authorization.server_kind,
        server_id=authorization.server_id,
        result=result,
    )


@transaction.atomic
def connect_server(
    *,
    user: AbstractBaseUser,
    provider: str,
    server_kind: str,
    server_id: int,
    result: TokenResult,
) -> tuple[OAuthGrant, models.Model]:
    """Store fresh tokens on the server's grant (reused on reconnect) and link it."""
    model = apps.get_model("mailservers", SERVER_MODELS[server_kind])
    server = model.objects.select_for_update().get(pk=server_id)
    grant = None
    if server.oauth_grant_id:
        grant = OAuthGrant.objects.select_for_update().get(pk=server.oauth_grant_id)
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


# --- Access tokens (SMTP/IMAP engines call these) ---------------------------------

_process_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
_process_locks_guard = threading.Lock()


@contextmanager
def _grant_lock(grant_id: int) -> Iterator[None]:
    """Threads of one process queue here; processes queue on the row lock."""
    with _process_locks_guard:
        lock = _process_locks[grant_id]
    with lock:
        yield


def get_access_token(grant: OAuthGrant, *, failed_token: str | None = None) -> str:
    """A currently valid access token for ``grant`` (refreshed when needed).

    Pass ``failed_token`` after the mail server refused it: the grant is then
    refreshed once more (unless another worker already did). Raises
    OAuthReconnectRequired, OAuthConfigError or OAuthProviderUnavailable (transient).
    """
    if grant.state == OAuthGrant.State.NEEDS_RECONNECT:
        raise OAuthReconnectRequired(detail=grant.last_error)
    if failed_token is None and grant.is_access_token_fresh(margin=REFRESH_MARGIN):
        return grant.access_token
    return refresh_access_token(grant=grant, failed_token=failed_token)


def refresh_access_token(*, grant: OAuthGrant, failed_token: str | None = None) -> str:
    """Refresh under the grant's lock; update ``grant`` in place, return the token."""
    error: MailServerError | None = None
    with _grant_lock(grant.pk), transaction.atomic():
        locked = OAuthGrant.objects.select_for_update().get(pk=grant.pk)
        if locked.state == OAuthGrant.State.NEEDS_RECONNECT:
            error = OAuthReconnectRequired(detail=locked.last_error)
        elif locked.is_access_token_fresh(margin=REFRESH_MARGIN) and (
            failed_token is None or locked.access_token != failed_token
        ):
            pass  # another worker refreshed while we waited for the lock
        else:
            error = _refresh_locked(locked)
    _copy_token_fields(source=locked, target=grant)
    if error is not None:
        raise error
    return locked.access_token


def _refresh_locked(grant: OAuthGrant) -> MailServerError | None:
    """Call the provider and record the outcome on the locked row; return the error."""
    now = timezone.now()
    if not grant.refresh_token:
        reason = OAuthReconnectRequired(detail="no refresh token stored")
        _flag_needs_reconnect(grant, reason)
        return reason
    try:
        result = config.get_client(grant.provider).refresh(
            refresh_token=grant.refresh_token
        )
    except OAuthReconnectRequired as exc:
        _flag_needs_reconnect(grant, exc)
        return exc
    except (OAuthConfigError, OAuthProviderUnavailable) as exc:
        logger.warning("OAuth refresh of grant %s failed: %s", grant.pk, exc.detail)
        grant.last_error = f"{exc.user_message} ({exc.detail})"
        grant.last_error_at = now
        grant.save(update_fields=["last_error", "last_error_at", "updated_at"])
        return exc
    grant.access_token = result.access_token
    grant.access_token_expires_at = result.expires_at
    fields = [
        "access_token",
        "access_token_expires_at",
        "last_success_at",
        "updated_at",
    ]
    if result.refresh_token:  # rotated: the old one may already be dead
        grant.refresh_token = result.refresh_token
        fields.append("refresh_token")
    grant.last_success_at = now
    grant.save(update_fields=fields)
    return None


def _flag_needs_reconnect(grant: OAuthGrant, exc: OAuthReconnectRequired) -> None:
    logger.warning("OAuth grant %s needs reconnect: %s", grant.pk, exc.detail)
    was_valid = grant.state == OAuthGrant.State.VALID
    grant.state = OAuthGrant.State.NEEDS_RECONNECT
    grant.access_token = ""
    grant.last_error = f"{exc.user_message} ({exc.detail})"
    grant.last_error_at = timezone.now()
    grant.save(
        update_fields=[
            "state",
            "access_token",
            "last_error",
            "last_error_at",
            "updated_at",
        ]
    )
    if was_valid:
        oauth_notify.notify_needs_reconnect(grant=grant)


def _copy_token_fields(*, source: OAuthGrant, target: OAuthGrant) -> None:
    for name in (
        "access_token",
        "access_token_expires_at",
        "refresh_token",
        "state",
        "last_error",
        "last_error_at",
        "last_success_at",
    ):
        setattr(target, name, getattr(source, name))


def record_grant_refused(*, grant: OAuthGrant, reason: str) -> None:
    """The mail server refused even a fresh token (SMTP AUTH disabled, wrong box)."""
    OAuthGrant.objects.filter(pk=grant.pk).update(
        last_error=reason[:2000], last_error_at=timezone.now()
    )


def keep_grant_alive(*, grant_id: int) -> None:
    """Refresh now, so an unused refresh token never silently expires."""
    grant = OAuthGrant.objects.filter(pk=grant_id, state=OAuthGrant.State.VALID).first()
    if grant is not None:
        refresh_access_token(grant=grant, failed_token=grant.access_token or "none")
