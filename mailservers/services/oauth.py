"""OAuth access tokens for the SMTP/IMAP engines: fresh, refreshed, never raced.

Invariants:
- A grant's tokens change only under its row lock (``select_for_update``, plus a
  per-process lock for threads), and the locked row is re-read first: when another
  worker already refreshed, its token is used. Rotated refresh tokens are saved in
  the same transaction as the access token they came with.
- ``invalid_grant`` flags the grant *needs reconnect* once, with
  ``reconnect_notice_due``: telling its owner and the admins is the job of the layer
  above (``mailservers.oauth_notices``, run by the tasks and views that refresh);
  every caller then gets ``OAuthReconnectRequired``, never a crash.
Connecting an account (``state``, code exchange) lives in ``oauth_connect``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import transaction
from django.utils import timezone

from mailservers.errors import (
    MailServerError,
    OAuthConfigError,
    OAuthProviderUnavailable,
    OAuthReconnectRequired,
    ServerAuthError,
)
from mailservers.models.oauth import OAuthGrant
from mailservers.oauth import config

logger = logging.getLogger(__name__)

# Refresh this long before the provider's expiry (clock skew, a slow SMTP dialogue).
REFRESH_MARGIN = dt.timedelta(minutes=5)
T = TypeVar("T")


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

    Call outside ``transaction.atomic()``: a refresh holds the grant's row lock
    during one HTTP call and commits what it learnt (a rotated token, a revocation)
    even when the caller then fails.
    """
    if grant.state == OAuthGrant.State.NEEDS_RECONNECT:
        grant.refresh_from_db()  # reconnected since this object was loaded?
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
    grant.reconnect_notice_due = grant.reconnect_notice_due or was_valid
    grant.save(
        update_fields=[
            "state",
            "access_token",
            "last_error",
            "last_error_at",
            "reconnect_notice_due",
            "updated_at",
        ]
    )


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


class GrantTokenProvider:
    """The ``token`` callable for SMTP/IMAP engines; remembers what it handed out.

    ``provider()`` returns a valid token; after ``refuse()`` the next call refreshes
    (once more) instead of returning the token the server just refused.
    """

    def __init__(self, grant: OAuthGrant) -> None:
        self.grant = grant
        self.last_token: str | None = None
        self._refused: str | None = None

    def __call__(self) -> str:
        self.last_token = get_access_token(self.grant, failed_token=self._refused)
        self._refused = None
        return self.last_token

    def refuse(self) -> None:
        self._refused = self.last_token or ""


def with_fresh_token(
    grant: OAuthGrant, attempt: Callable[[GrantTokenProvider], T]
) -> T:
    """Run ``attempt(token)``; if the server refuses the token, refresh and retry once.

    ``attempt`` opens the connection with ``token`` as its XOAUTH2 callable and
    raises ``ServerAuthError`` when authentication fails. A second refusal is
    recorded on the grant and re-raised (the mailbox may lack SMTP AUTH or IMAP).
    """
    token = GrantTokenProvider(grant)
    try:
        result = attempt(token)
    except OAuthReconnectRequired:
        raise
    except ServerAuthError:
        if token.last_token is None:
            raise
        token.refuse()
    else:
        _record_grant_used(grant)
        return result
    try:
        result = attempt(token)
    except OAuthReconnectRequired:
        raise
    except ServerAuthError as exc:
        record_grant_refused(grant=grant, reason=exc.user_message)
        raise
    _record_grant_used(grant)
    return result


def _record_grant_used(grant: OAuthGrant) -> None:
    """A server accepted the token: clear an earlier refusal from the status."""
    if grant.has_failed_since_success:
        grant.last_success_at = timezone.now()
        OAuthGrant.objects.filter(pk=grant.pk).update(
            last_success_at=grant.last_success_at
        )


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
