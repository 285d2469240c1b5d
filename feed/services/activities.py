"""Follow-up activities on records: schedule, mark done (posted in the feed), cancel."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed.models import Activity, ActivityType, Message, Subtype
from feed.services.assignments import notify_activity
from feed.services.followers import follow
from feed.services.posting import post_message
from knowlix.html import sanitize_html, text_to_html
from knowlix.models import Record


def default_due_date(activity_type: ActivityType) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=activity_type.default_delay_days)


@transaction.atomic
def schedule_activity(
    *,
    record: Model,
    activity_type: ActivityType,
    assignee: User,
    created_by: User | None,
    summary: str = "",
    note: str = "",
    due_date: dt.date | None = None,
) -> Activity:
    """Plan a follow-up on ``record``; the due date defaults to the type's delay."""
    activity = Activity.objects.create(
        content_object=record,
        activity_type=activity_type,
        assignee=assignee,
        created_by=created_by,
        summary=summary[:200],
        note=sanitize_html(note),
        due_date=due_date or default_due_date(activity_type),
    )
    follow(record=record, user=assignee)
    if isinstance(record, Record):
        notify_activity(activity=activity, record=record)
    return activity


@transaction.atomic
def mark_activity_done(
    *, activity: Activity, user: User, feedback: str = ""
) -> Message:
    """Post "<type> done" (with the feedback) in the feed and delete the activity."""
    record = activity.content_object
    assert record is not None  # its view found the record (a deleted one is a 404)
    title = activity.summary or activity.activity_type.name
    parts = [
        "<p><strong>"
        + escape(_("%(type)s done") % {"type": activity.activity_type.name})
        + "</strong>"
        + (": " + escape(activity.summary) if activity.summary else "")
        + "</p>"
    ]
    if activity.note:
        parts.append(activity.note)
    if feedback.strip():
        parts.append(
            "<p><em>" + escape(_("Feedback")) + ":</em></p>" + text_to_html(feedback)
        )
    message = post_message(
        record=record,
        kind=Message.Kind.NOTIFICATION,
        subtype=Subtype.ACTIVITY,
        author=user,
        subject=title,
        body_html="".join(parts),
    )
    activity.delete()
    return message


def cancel_activity(*, activity: Activity) -> None:
    activity.delete()
