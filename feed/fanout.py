"""Fan a post out to many followers from a task, chunk by chunk.

A post whose subtype has more than ``INLINE_FOLLOWERS`` subscribed followers is
written at once (the web request returns) with ``fanout_total`` set; the Celery
task ``feed.tasks.fan_out_message`` then plans, notifies and queues the mail of
``CHUNK`` followers at a time, in follower order, with the same rules as an inline
post (``feed.recipients.plan_delivery`` on the chunk's followers). Each chunk's
rows (recipients, notifications, outgoing mail) commit together with the move of
``fanout_cursor``, so a task killed mid-way resumes after the last chunk it wrote:
nobody is skipped, nobody is mailed twice. Memory stays flat: one chunk at a time.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import signature
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Max, Model, QuerySet

from feed import recipients as rcpt
from feed.models import Follower, Message, Subtype
from knowlix.models import Contact

logger = logging.getLogger(__name__)

INLINE_FOLLOWERS = 500
CHUNK = 2000
FAN_OUT_TASK = "feed.tasks.fan_out_message"


def _subscriptions(record: Model, subtype: Subtype) -> QuerySet[Model]:
    return Follower.subtypes.through.objects.filter(
        follower__content_type=ContentType.objects.get_for_model(record),
        follower__object_id=record.pk,
        subtype=subtype,
    )


def subscribed(*, record: Model, subtype: Subtype) -> tuple[int, int]:
    """(how many followers of ``record`` are subscribed to ``subtype``, the last
    one's id), in one query."""
    found = _subscriptions(record, subtype).aggregate(
        count=Count("id"), last=Max("follower_id")
    )
    return found["count"], found["last"] or 0


def start_fan_out(*, message: Message, total: int, until: int) -> None:
    """Mark ``message`` to be fanned out to its ``total`` subscribed followers (up
    to follower ``until``) by the task that starts once the posting transaction
    commits (call inside it)."""
    Message.objects.filter(pk=message.pk).update(
        fanout_total=total, fanout_done=0, fanout_cursor=0, fanout_until=until
    )
    message.fanout_total, message.fanout_done = total, 0
    message.fanout_cursor, message.fanout_until = 0, until
    transaction.on_commit(partial(_start_task, message.pk))


def _start_task(message_id: int) -> None:
    """Ask a worker to fan out (by task name: tasks are the layer above)."""
    signature(FAN_OUT_TASK, args=(message_id,)).delay()


def fan_out_message(*, message_id: int, chunk: int = CHUNK) -> int:
    """Run (or resume) a message's fan-out to the end; returns followers handled."""
    handled = 0
    while True:
        done = _fan_out_chunk(message_id, chunk)
        if done is None:
            return handled
        handled += done


def _fan_out_chunk(message_id: int, chunk: int) -> int | None:
    """Plan and write the next ``chunk`` followers; None when nothing is left."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("subtype", "author_user", "author_contact")
            .filter(pk=message_id)
            .first()
        )
        if message is None or not message.is_fanning_out:
            return None
        record = message.content_object
        subtype = message.subtype
        if record is None or subtype is None:  # the record is gone: nobody to tell
            _finish(message)
            return None
        followers = _next_followers(record, message, chunk)
        if not followers:
            _finish(message)
            return None
        subscribed = set(
            Follower.subtypes.through.objects.filter(
                follower_id__in=[row[0] for row in followers], subtype=subtype
            ).values_list("follower_id", flat=True)
        )
        mine = [row for row in followers if row[0] in subscribed]
        following = rcpt.following_from_rows(
            [(user_id, contact_id, subtype.pk) for _f, user_id, contact_id, *_ in mine],
            subtype=subtype,
        )
        lookups = rcpt.Lookups()  # per chunk: memory stays flat
        # The contacts came with their followers: no second read.
        lookups.add_contacts(
            Contact.from_db(None, ["id", "name", "email"], (contact_id, name, email))
            for _f, _u, contact_id, name, email in mine
            if contact_id is not None
        )
        plan = rcpt.plan_delivery(
            message=message,
            record=record,
            extra_addresses=(),
            following=following,
            lookups=lookups,
        )
        _only_followers(plan, following, message)
        rcpt.save_recipient_rows(plan.recipient_rows)
        rcpt.create_notifications(message=message, users=plan.notified_users)
        # Sent on commit; the message's own Message-ID went with the post's part.
        rcpt.queue_planned_mail(message=message, plan=plan, own_id=False)
        Message.objects.filter(pk=message.pk).update(
            fanout_cursor=followers[-1][0],
            fanout_done=message.fanout_done + len(subscribed),
        )
    return len(subscribed)


def _next_followers(
    record: Model, message: Message, chunk: int
) -> list[tuple[int, int | None, int | None, str | None, str | None]]:
    """(id, user id, contact id, contact name, contact email) of the record's next
    ``chunk`` followers after the cursor, subscribed or not: one range of the
    (content type, object id, id) index, so a chunk costs the same at the end of
    100,000 followers as at the start, with or without planner statistics."""
    return list(
        Follower.objects.filter(
            content_type=ContentType.objects.get_for_model(record),
            object_id=record.pk,
            id__gt=message.fanout_cursor,
            id__lte=message.fanout_until,
        )
        .order_by("id")
        .values_list("id", "user_id", "contact_id", "contact__name", "contact__email")[
            :chunk
        ]
    )


def _only_followers(
    plan: rcpt.DeliveryPlan, following: rcpt.Following, message: Message
) -> None:
    """Keep the chunk's own followers: ``@mentions`` were handled by the post."""
    mentioned = rcpt.mentioned_usernames(message.body_text)
    plan.notified_users = [
        u
        for u in plan.notified_users
        if u.pk in following.users and u.get_username() not in mentioned
    ]
    kept = {u.pk for u in plan.notified_users}
    emails = {u.email.lower() for u in plan.notified_users if u.email}
    plan.users_by_email = [
        a for a in plan.users_by_email if a.address.lower() in emails
    ]
    plan.recipient_rows = [
        row for row in plan.recipient_rows if row.user_id is None or row.user_id in kept
    ]


def _finish(message: Message) -> None:
    """Done: the total becomes what was handled (followers may have changed)."""
    Message.objects.filter(pk=message.pk).update(fanout_total=message.fanout_done)
    logger.info(
        "message %s: fanned out to %s followers", message.pk, message.fanout_done
    )
