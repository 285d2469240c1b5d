"""The first administrator of a fresh deployment, created from the browser.

The page works only while no user exists, and only with the set-up code that
``manage.py first_admin_link`` prints (the web service prints it at start-up
too): an install reachable from the internet cannot be claimed by a stranger.
The code is derived from SECRET_KEY, so every web process agrees on it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from knowlix.setup import EMPLOYEES, ensure_default_groups
from knowlix.users import get_profile


class FirstAdminExists(Exception):
    """A user was created meanwhile: the page is closed for good."""


def is_open() -> bool:
    return not User.objects.exists()


def setup_code() -> str:
    return salted_hmac(
        "knowlix.first-admin", "first-admin", secret=settings.SECRET_KEY
    ).hexdigest()[:32]


def is_valid_code(code: str) -> bool:
    return constant_time_compare(code, setup_code())


def setup_path() -> str:
    return f"{reverse('first-admin')}?code={setup_code()}"


@transaction.atomic
def create_first_admin(*, username: str, email: str, password: str) -> User:
    """A superuser in the Employees group; refused once any user exists."""
    groups = ensure_default_groups()
    # Serialise two set-up forms sent at once: the groups row is locked.
    Group.objects.select_for_update().get(pk=groups[EMPLOYEES].pk)
    if not is_open():
        raise FirstAdminExists
    user = User.objects.create_superuser(
        username=username, email=email, password=password
    )
    user.groups.add(groups[EMPLOYEES])
    get_profile(user)
    return user
