"""Tell the owner and the admins that an OAuth grant needs reconnecting (inbox).

Called inside the transaction that flags the grant (only when it flips from valid),
so the notice exists exactly when the flag does. It goes through
``feed.services.notify_users``: a notice on the grant, whose inbox link opens the
grant page with the one-click *Reconnect* button. The recipients are exactly the
users who may open that page and reconnect (``OAuthGrant.can_be_opened_by``):
active admins and the grant's active owner.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import escape

from feed.models import Message
from feed.services import notify_users
from mailservers.models.oauth import OAuthGrant


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
