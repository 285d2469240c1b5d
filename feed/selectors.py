"""Reads of the feed: each returns rows already joined/prefetched for its page."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from feed.models import Notification


def unread_count(user: AbstractBaseUser | AnonymousUser) -> int:
    """Unread inbox notifications of ``user`` (0 when anonymous)."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, is_read=False).count()
