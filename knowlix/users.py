"""User helpers: profiles (created on first use) and the admin notion."""

from __future__ import annotations

from typing import Any, TypeGuard

from django import forms
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

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


def person_label(user: User) -> str:
    """How a person is named everywhere: full name, else user name."""
    return user.get_full_name() or user.get_username()


class PersonChoiceField(forms.ModelChoiceField):
    """A user picker that shows people by full name, with a readable empty choice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("empty_label", "Nobody")
        super().__init__(*args, **kwargs)

    def label_from_instance(self, obj: User) -> str:
        return person_label(obj)


class PeopleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return person_label(obj)


def active_people() -> QuerySet[User]:
    return User.objects.filter(is_active=True).order_by(
        "first_name", "last_name", "username"
    )
