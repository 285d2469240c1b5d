"""Tell the owner and the admins that an OAuth grant needs reconnecting (inbox).

The layer above the token service, which only flags the grant (``state`` *needs
reconnect* and ``reconnect_notice_due``, in the transaction that learnt it). The
tasks and views that refresh tokens call :func:`send_reconnect_notices` after their
work, and beat's every-minute ``process_outbox`` catches any other path. Each due
flag is cleared in the transaction that posts its notice: one notice per flip, none
lost. It goes through ``feed.services.notify_users``: a notice on the grant, whose
inbox link opens the grant page with the one-click *Reconnect* button. The
recipients are exactly the users who may open that page and reconnect
(``OAuthGrant.can_be_opened_by``): active admins and the grant's active owner.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils.html import escape

from feed.models import Message
from feed.services import notify_users
from mailservers.models.oauth import OAuthGrant


def send_reconnect_notices() -> int:
    """Post the notice of every grant flagged since the last call; how many posted."""
    due = OAuthGrant.objects.filter(reconnect_notice_due=True)
    sent = 0
    for grant_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            if not due.filter(pk=grant_id).update(reconnect_notice_due=False):
                continue  # another process took it
            grant = OAuthGrant.objects.get(pk=grant_id)
            # Reconnected before anyone was told: nothing left to ask of them.
            if grant.state == OAuthGrant.State.NEEDS_RECONNECT:
                notify_needs_reconnect(grant=grant)
                sent += 1
    return sent


def notify_needs_reconnect(*, grant: OAuthGrant) -> Message:
    subject = (
        f"Reconnect {grant.get_provider_display()} account {grant.account_address}"
    )
    body = (
        "<p>Knowlix can no longer use "
        f"<strong>{escape(grant.account_address)}</strong>: "
        f"{escape(grant.get_provider_display())} refused its authorization (revoked, "
        "expired, or the password was reset). Mail through this account is on hold; "
        "other servers keep working.</p>"
        f'<p><a href="{escape(grant.get_absolute_url())}">Open the account</a> and '
        "click <em>Reconnect</em>, then sign in again.</p>"
    )
    users = get_user_model().objects.filter(
        Q(is_active=True)
        & (Q(is_staff=True) | Q(is_superuser=True) | Q(pk=grant.owner_id))
    )
    return notify_users(target=grant, users=users, subject=subject, body_html=body)
