"""View decorators for Settings (admins) and Technical pages (admins in developer mode)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from knowlix.users import has_technical_access, is_admin

View = Callable[..., HttpResponse]


class AuthenticatedHttpRequest(HttpRequest):
    """A request past ``LoginRequiredMiddleware`` (every view without
    ``login_not_required``): ``user`` is a signed-in User, never AnonymousUser."""

    user: User


def admin_required(view: View) -> View:
    """Login, then 403 for anyone but an admin."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied("Only administrators may open Settings.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def technical_required(view: View) -> View:
    """Login, then 403 unless an admin with developer mode on."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not has_technical_access(request.user):
            raise PermissionDenied(
                "Technical pages need an administrator in developer mode."
            )
        return view(request, *args, **kwargs)

    return login_required(wrapped)
