"""*Send later*: emails written now, posted on the record's feed when they are due.

A scheduled message is a row of its own until it leaves: the feed shows it as
*scheduled*, its author or anyone who may edit the record changes or cancels it.
:func:`send_due_messages` (beat, every minute) posts each due one through
``post_message`` and marks it *sent* in the same transaction, under a row lock
taken with ``SKIP LOCKED``: a message leaves once, however many workers run. A post
that is refused marks the row *failed* with the reason, shown in the feed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TypedDict, Unpack

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from feed.errors import FeedError
from feed.models import Message, ScheduledMessage
from feed.services import post_message

logger = logging.getLogger(__name__)
State = ScheduledMessage.State


class TooLate(FeedError):
    default_message = gettext_lazy(
        "Too late: this message has already left (or was cancelled)."
    )


def scheduled_for_record(*, record: Model) -> QuerySet[ScheduledMessage]:
    """The record's messages waiting to leave, and those that failed to."""
    ct = ContentType.objects.get_for_model(record)
    return ScheduledMessage.objects.filter(
        content_type=ct, object_id=record.pk, state__in=[State.SCHEDULED, State.FAILED]
    ).select_related("author")


def schedule_message(
    *, record: Model, author: User, **content: Unpack[Content]
) -> ScheduledMessage:
    """Keep an email to post on ``record`` at ``send_at``."""
    row = ScheduledMessage(content_object=record, author=author)
    _set_content(row, content)
    row.save()
    return row


@transaction.atomic
def update_scheduled_message(
    *, scheduled: ScheduledMessage, **content: Unpack[Content]
) -> ScheduledMessage:
    """Change a message that has not left yet (``TooLate`` otherwise); a failed
    one is scheduled again."""
    row = _lock_waiting(scheduled)
    _set_content(row, content)
    row.state, row.last_error, row.updated_at = State.SCHEDULED, "", timezone.now()
    row.save(
        update_fields=[*Content.__annotations__, "state", "last_error", "updated_at"]
    )
    return row


class Content(TypedDict):
    """What an author writes and may change until the message leaves."""

    subject: str
    body_text: str
    recipients: Sequence[str]
    cc: Sequence[str]
    send_at: dt.datetime


def _set_content(row: ScheduledMessage, content: Content) -> None:
    row.subject, row.body_text = content["subject"][:200], content["body_text"]
    row.recipients, row.cc = list(content["recipients"]), list(content["cc"])
    row.send_at = content["send_at"]


@transaction.atomic
def cancel_scheduled_message(*, scheduled: ScheduledMessage) -> None:
    """Cancel a message that has not left yet (``TooLate`` otherwise)."""
    row = _lock_waiting(scheduled)
    row.state, row.updated_at = State.CANCELLED, timezone.now()
    row.save(update_fields=["state", "updated_at"])


def _lock_waiting(scheduled: ScheduledMessage) -> ScheduledMessage:
    row = (
        ScheduledMessage.objects.select_for_update()
        .filter(pk=scheduled.pk, state__in=[State.SCHEDULED, State.FAILED])
        .first()
    )
    if row is None:
        raise TooLate()
    return row


def send_due_messages(*, now: dt.datetime | None = None) -> int:
    """Post every scheduled message due at ``now``; returns how many left."""
    now = now or timezone.now()
    due = ScheduledMessage.objects.filter(state=State.SCHEDULED, send_at__lte=now)
    sent = 0
    for pk in list(due.order_by("send_at", "id").values_list("pk", flat=True)):
        sent += _send_one(pk, now)
    return sent


def _send_one(pk: int, now: dt.datetime) -> int:
    try:
        with transaction.atomic():
            row = (
                ScheduledMessage.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=State.SCHEDULED, send_at__lte=now)
                .first()
            )
            if row is None:  # another worker has it, or it changed meanwhile
                return 0
            record = row.content_object
            if record is None:
                raise FeedError(_("The record was deleted."))
            message = post_message(
                record=record,
                kind=Message.Kind.EMAIL,
                author=row.author,
                subject=row.subject,
                body_text=row.body_text,
                recipients=row.recipients,
                cc=row.cc,
            )
            row.state, row.message, row.updated_at = State.SENT, message, now
            row.save(update_fields=["state", "message", "updated_at"])
            return 1
    except FeedError as exc:
        logger.info("scheduled message %s not sent: %s", pk, exc.user_message)
        ScheduledMessage.objects.filter(pk=pk, state=State.SCHEDULED).update(
            state=State.FAILED, last_error=exc.user_message, updated_at=now
        )
        return 0
