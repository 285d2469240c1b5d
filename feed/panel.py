"""The context of a record's feed panel, shared by the template tag and the views.

The panel is rendered inside the record page (``{% include "feed/_panel.html" %}``)
and re-rendered alone by the feed's htmx views after each post.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.utils import timezone

from feed import scheduled, selectors
from feed.forms import ActivityForm, AddFollowerForm, DoneForm, MessageForm
from feed.models import Message, ScheduledMessage
from knowlix.access import can_change_model

# The panel lists this many followers at most (and says how many there are).
FOLLOWERS_SHOWN = 200


def scheduled_form(row: ScheduledMessage) -> MessageForm:
    """The edit form of a scheduled email, filled with what it holds now."""
    return MessageForm(
        initial={
            "kind": Message.Kind.EMAIL,
            "subject": row.subject,
            "body": row.body_text,
            "recipients": ", ".join(row.recipients),
            "cc": ", ".join(row.cc),
            "send_at": timezone.localtime(row.send_at),
        },
        auto_id=f"sch{row.pk}_%s",
    )


def share_people_choices(
    activity_form: ActivityForm, follower_form: AddFollowerForm
) -> None:
    """Read the colleagues once for both pickers of the panel (each select would
    otherwise run the same query when rendered); each keeps its own empty label."""
    assignee = activity_form.fields["assignee"]
    colleague = follower_form.fields["user"]
    assert isinstance(assignee, forms.ModelChoiceField)
    assert isinstance(colleague, forms.ModelChoiceField)
    # iter(): a generator, so list() asks no COUNT(*) first.
    choices = list(iter(cast("Iterable[Any]", assignee.choices)))
    assignee.widget.choices = choices
    colleague.widget.choices = [("", colleague.empty_label), *choices[1:]]


def panel_context(
    *,
    record: Model,
    user: User,
    message_form: MessageForm | None = None,
    note_form: MessageForm | None = None,
    activity_form: ActivityForm | None = None,
    follower_form: AddFollowerForm | None = None,
    open_composer: str = "",
    focus_message_id: int | None = None,
) -> dict:
    ct = ContentType.objects.get_for_model(record)
    page = selectors.feed_page(record=record, focus_id=focus_message_id)
    followers = selectors.record_followers(record=record, limit=FOLLOWERS_SHOWN + 1)
    follower_total = len(followers)
    me = next((f for f in followers if f.user_id == user.pk), None)
    if follower_total > FOLLOWERS_SHOWN:  # a mailing's audience: count, don't list
        followers = followers[:FOLLOWERS_SHOWN]
        follower_total = selectors.follower_count(record=record)
        me = selectors.user_follower(record=record, user=user)
    activity_form = activity_form or ActivityForm(auto_id="act_%s")
    follower_form = follower_form or AddFollowerForm(auto_id="fol_%s")
    share_people_choices(activity_form, follower_form)
    return {
        "record": record,
        "record_ct_id": ct.pk,
        "can_write": can_change_model(user, type(record)),
        "page": page,
        "messages": page.messages,
        "feed_stamp": selectors.feed_stamp(record=record),
        "followers": followers,
        "follower_total": follower_total,
        "my_follower": me,
        "activities": selectors.record_activities(record=record),
        "scheduled_messages": [
            (row, scheduled_form(row))
            for row in scheduled.scheduled_for_record(record=record)
        ],
        "message_form": message_form
        or MessageForm(initial={"kind": Message.Kind.EMAIL}, auto_id="msg_%s"),
        "note_form": note_form
        or MessageForm(initial={"kind": Message.Kind.NOTE}, auto_id="note_%s"),
        "activity_form": activity_form,
        "follower_form": follower_form,
        "done_form": DoneForm(),
        "open_composer": open_composer,
        "subtypes": selectors.subtypes(record=record),
    }
