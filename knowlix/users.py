"""User helpers: profiles (created on first use) and the admin notion."""

from __future__ import annotations

from typing import TypeGuard

from django.contrib.auth.models import AnonymousUser, User

from knowlix.models import UserProfile


def get_profile(user: User) -> UserProfile:
    """The user's profile, created with defaults the first time it is needed."""
    try:
        return user.profile
    except UserProfile.DoesNotExist:
        profile, _ = UserProfile.objects.get_or_create(user=user)
        user.profile = profile
        return profile


def is_admin(user: User | AnonymousUser) -> TypeGuard[User]:
    """Admins may open Settings."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_staff or user.is_superuser)
    )


def has_technical_access(user: User | AnonymousUser) -> bool:
    """The Technical menu: an admin with developer mode on."""
    return is_admin(user) and get_profile(user).developer_mode
