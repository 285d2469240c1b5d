"""A user's inbox: marking notifications read."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.utils import timezone

from feed.models import Message, Notification


def mark_notifications_read(
    *, user: User, notification_ids: Sequence[int] | None = None
) -> int:
    """Mark some (or, with ``None``, all) of the user's notifications read."""
    qs = Notification.objects.filter(user=user, is_read=False)
    if notification_ids is not None:
        qs = qs.filter(pk__in=list(notification_ids))
    return qs.update(is_read=True, read_at=timezone.now())


def mark_message_read(*, user: User, message: Message) -> None:
    Notification.objects.filter(user=user, message=message, is_read=False).update(
        is_read=True, read_at=timezone.now()
    )
