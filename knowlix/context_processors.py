"""Template context for every page: the top bar's apps, settings and technical menu."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from feed.selectors import unread_count
from knowlix.access import can_view_model
from knowlix.recordviews import RECORD_KINDS
from knowlix.users import has_technical_access, is_admin

# (label, URL name) of the Technical menu; entries whose page is not installed are hidden.
TECHNICAL_MENU = (
    ("Outgoing Mail Servers", "mailservers:outgoing-list"),
    ("Incoming Mail Servers", "mailservers:incoming-list"),
    ("Email queue", "mailservers:queue"),
    ("Mail flow", "mailservers:mail-flow"),
    ("Local mailbox", "mailservers:localmailbox"),
    ("Aliases", "routing:alias-list"),
    ("Unprocessed mail", "routing:unprocessed-list"),
    ("Messages", "feed:message-list"),
    ("System parameters", "knowlix:parameters"),
    ("Locked logins", "knowlix:locked-logins"),
)


def _links(entries: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    links = []
    for label, name in entries:
        try:
            links.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    return links


def knowlix(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    apps = [
        (
            kind.app,
            reverse(f"knowlix:{kind.url_name}-list"),
            request.path.startswith(f"/{kind.app_slug}/"),
        )
        for kind in RECORD_KINDS
        if can_view_model(user, kind.model)
    ]
    context = {
        "nav_apps": apps,
        "nav_is_admin": is_admin(user),
        "nav_technical": _links(TECHNICAL_MENU) if has_technical_access(user) else [],
        "nav_unread": unread_count(user),
    }
    return context
