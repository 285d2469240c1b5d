"""@mentions: who can be mentioned, which names are unknown, and their highlight.

The text form is ``@username`` (what ``feed.recipients.MENTION`` finds and
notifies). Shown, a known mention reads ``@Full Name`` in a ``<mark>``; an unknown
one is left as typed. The highlight is added when a body is shown (after
sanitizing), never stored: the sanitizer keeps no classes from mail.
"""

from __future__ import annotations

import re
import threading
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils.html import escape

from feed.recipients import MENTION, mentioned_usernames

CACHE_SECONDS = 30.0
_lock = threading.Lock()
_people: dict[str, str] | None = None
_loaded_at = 0.0
_TAG = re.compile(r"(<[^>]*>)")


def person_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def known_people() -> dict[str, str]:
    """Full names of the active users by username, read at most every 30 s per
    process (a feed page highlights many notes with one read)."""
    global _people, _loaded_at
    with _lock:
        if _people is None or time.monotonic() - _loaded_at > CACHE_SECONDS:
            users = get_user_model().objects.filter(is_active=True)
            _people = {u.get_username(): person_name(u) for u in users}
            _loaded_at = time.monotonic()
        return _people


def clear_people_cache() -> None:
    global _people
    with _lock:
        _people = None


def find_people(*, query: str, limit: int = 8) -> list[dict[str, str]]:
    """Active users whose user name, first or last name starts with ``query``
    (then contains it), for the composer's ``@`` suggestions."""
    query = query.strip().lstrip("@")
    users = get_user_model().objects.filter(is_active=True)
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    rows = sorted(
        users.order_by("first_name", "last_name", "username")[: limit * 4],
        key=lambda u: not _starts(u, query.lower()),
    )[:limit]
    return [{"username": u.get_username(), "name": person_name(u)} for u in rows]


def _starts(user: User, query: str) -> bool:
    names = (user.get_username(), user.first_name, user.last_name)
    return any(n.lower().startswith(query) for n in names if n)


def unknown_mentions(text: str) -> list[str]:
    """``@names`` in ``text`` that are no active user's user name, sorted."""
    names = mentioned_usernames(text)
    if not names:
        return []
    found = set(
        get_user_model()
        .objects.filter(username__in=names, is_active=True)
        .values_list("username", flat=True)
    )
    return sorted(names - found)


def highlight_mentions(html: str) -> str:
    """Known ``@username`` in the text of (sanitized) ``html`` as a highlighted
    ``@Full Name``; tags and attributes are left alone."""
    if "@" not in html:
        return html
    people = known_people()

    def mark(match: re.Match[str]) -> str:
        name = people.get(match.group(1))
        if name is None:
            return match.group(0)
        return (
            f'<mark class="mention" title="@{escape(match.group(1))}">'
            f"@{escape(name)}</mark>"
        )

    parts = _TAG.split(html)
    return "".join(
        part if i % 2 else MENTION.sub(mark, part) for i, part in enumerate(parts)
    )
