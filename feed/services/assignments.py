"""Tell people that something was put on their plate: a record assigned to them,
an activity scheduled for them.

A personal notice (``notify_users``): in their inbox, or by email if they prefer,
never to the person who did it. Call inside the transaction of the change.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed.models import Activity, Message
from feed.services.followers import follow
from feed.services.notices import notify_users
from knowlix.models import Record


def _record_name(record: Record) -> str:
    return f"{record.record_tag} {record}"


def _who(user: User | None) -> str:
    if user is None:
        return "Knowlix"
    return user.get_full_name() or user.get_username()


def notify_assignment(
    *, record: Record, assignee: User, author: User | None
) -> Message | None:
    """``assignee`` now handles ``record``: they follow it and get a notice."""
    follow(record=record, user=assignee)
    if author is not None and author.pk == assignee.pk:
        return None
    subject = _("%(record)s was assigned to you") % {"record": _record_name(record)}
    body = _("%(author)s assigned %(record)s to %(assignee)s.") % {
        "author": _who(author),
        "record": _record_name(record),
        "assignee": _who(assignee),
    }
    return notify_users(
        target=record,
        users=[assignee],
        author=author,
        subject=subject,
        body_html="<p>" + escape(body) + "</p>",
    )


def notify_activity(*, activity: Activity, record: Record) -> Message | None:
    """A new activity's assignee hears about it (unless they planned it)."""
    author, assignee = activity.created_by, activity.assignee
    if author is not None and author.pk == assignee.pk:
        return None
    title = activity.summary or activity.activity_type.name
    subject = _("%(type)s for you on %(record)s: %(title)s") % {
        "type": activity.activity_type.name,
        "record": _record_name(record),
        "title": title,
    }
    body = _("%(author)s scheduled %(type)s “%(title)s” for %(assignee)s, due %(due)s.")
    text = body % {
        "author": _who(author),
        "type": activity.activity_type.name,
        "title": title,
        "assignee": _who(assignee),
        "due": activity.due_date.isoformat(),
    }
    return notify_users(
        target=record,
        users=[assignee],
        author=author,
        subject=subject,
        body_html="<p>" + escape(text) + "</p>" + activity.note,
    )
