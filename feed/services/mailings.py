"""Send a mailing to its audience, once; opt-outs.

Send is two steps. :func:`start_sending` (the click) claims the mailing with one
UPDATE from *draft* to *sending* (a second click, or two at once, finds it no
longer a draft) and starts the task ``feed.tasks.send_mailing`` on commit. The
task's :func:`post_mailing` makes the audience's contacts followers of the mailing
subscribed to the *mailing* subtype alone (two set-based INSERT … SELECT
statements, so 100,000 contacts cost two statements, not 100,000 rows through
Python), then posts the mailing's email in the same transaction: above
``feed.fanout.INLINE_FOLLOWERS`` the fan-out task mails them chunk by chunk
(resumable after a kill: nobody skipped, nobody mailed twice), each copy to its
contact alone with its own unsubscribe link (``feed.delivery``). A task run again
finds the message posted and does nothing. The audience never gets any other
post of the mailing's feed (their only subscription is the mailing subtype).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, cast

from celery import signature
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from feed import fanout, selectors
from feed.errors import EmptyAudience, MailingNotDraft
from feed.models import Follower, Message, Subtype
from feed.services.posting import get_subtype, post_message
from knowlix.models import Mailing, MailingOptOut, normalize_email

SEND_TASK = "feed.tasks.send_mailing"
# A mailing still *sending* without its message this long after Send lost its task
# (a worker killed before the post committed, a broker that lost the message).
STALLED_AFTER = dt.timedelta(minutes=5)


def start_sending(*, mailing: Mailing, user: User) -> None:
    """The Send click: *draft* → *sending*, once; the task posts on commit.

    Raises ``MailingNotDraft`` when it is no longer a draft (sent, or being sent
    by another click) and ``EmptyAudience`` when nobody would get it."""
    with transaction.atomic():
        if not selectors.mailing_audience(mailing).exists():
            raise EmptyAudience()
        won = Mailing.objects.filter(pk=mailing.pk, state=Mailing.State.DRAFT).update(
            state=Mailing.State.SENDING,
            sent_by=user,
            sent_at=timezone.now(),
            updated_at=timezone.now(),
        )
        if not won:
            raise MailingNotDraft()
        transaction.on_commit(partial(_start_task, mailing.pk))
    mailing.refresh_from_db()


def _start_task(mailing_id: int) -> None:
    """Ask a worker to post the mailing (by task name: tasks are the layer above)."""
    signature(SEND_TASK, args=(mailing_id,)).delay()


@transaction.atomic
def post_mailing(*, mailing_id: int) -> Message | None:
    """Subscribe the audience and post the mailing's email (the task's work).

    Locks the mailing row; does nothing unless it is *sending* without a message
    yet (a task run twice posts once). Small audiences are mailed here and the
    mailing is *sent*; large ones by the fan-out task (:func:`mark_sent` then)."""
    mailing = (
        Mailing.objects.select_for_update(of=("self",))
        .select_related("sent_by")
        .filter(pk=mailing_id)
        .first()
    )
    if mailing is None or mailing.state != Mailing.State.SENDING or mailing.message_id:
        return None
    subtype = get_subtype(Subtype.MAILING)
    subscribe_audience(mailing=mailing, subtype=subtype)
    author = cast("User | None", mailing.sent_by)  # user_link() is untyped
    message = post_message(
        record=mailing,
        kind=Message.Kind.EMAIL,
        author=author,
        subject=mailing.subject,
        body_text=mailing.body,
        subtype=subtype,
    )
    mailing.message = message
    # A fan-out counted them when posting; a small audience is counted here.
    mailing.audience_size = (
        message.fanout_total or (fanout.subscribed(record=mailing, subtype=subtype)[0])
    )
    fields = ["message", "audience_size", "updated_at"]
    if not message.is_fanning_out:
        mailing.state = Mailing.State.SENT
        fields.append("state")
    mailing.save(update_fields=fields)
    return message


def subscribe_audience(*, mailing: Mailing, subtype: Subtype) -> None:
    """Make each audience contact a follower of ``mailing`` subscribed to
    ``subtype``, and nobody else subscribed to it.

    Set-based and linear whatever the planner's statistics (the rows are new in
    this transaction, so PostgreSQL's are stale: a join against the audience was
    planned as a nested loop): one DELETE of the record's contact subscriptions to
    ``subtype`` (someone added by hand, perhaps since opted out), one INSERT …
    SELECT of the audience as new followers (an index probe each for those who
    follow already), one INSERT … SELECT subscribing exactly the rows it wrote
    (stamped with one ``created_at``, above the highest follower id before it),
    and the few followers from before who are in the audience. On PostgreSQL the
    INSERT of the followers and of their subscriptions are one statement (a
    data-modifying WITH … RETURNING: exactly the rows written, no second scan).
    Call inside a transaction."""
    ct = ContentType.objects.get_for_model(Mailing)
    audience = selectors.mailing_audience(mailing).order_by()
    audience_sql, audience_params = audience.values(
        audience_id=F("pk")
    ).query.sql_with_params()
    mine = Follower.objects.filter(content_type=ct, object_id=mailing.pk)
    through = Follower.subtypes.through
    q = connection.ops.quote_name
    follower_table, through_table = (
        q(Follower._meta.db_table),
        q(through._meta.db_table),
    )
    through.objects.filter(
        subtype=subtype,
        follower_id__in=mine.filter(contact__isnull=False).values("id"),
    ).delete()
    before = dict(mine.filter(contact__isnull=False).values_list("contact_id", "id"))
    boundary = Follower.objects.aggregate(last=Max("id"))["last"] or 0
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    insert_followers = (
        f"INSERT INTO {follower_table} (content_type_id, object_id, contact_id, "
        f"created_at) SELECT %s, %s, a.audience_id, %s FROM ({audience_sql}) a "
        f"WHERE NOT EXISTS (SELECT 1 FROM {follower_table} f WHERE "
        "f.content_type_id = %s AND f.object_id = %s AND "
        "f.contact_id = a.audience_id) ORDER BY a.audience_id"
    )
    followers_params = [ct.pk, mailing.pk, stamp, *audience_params, ct.pk, mailing.pk]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the subscriptions of exactly the rows it inserted
            # (RETURNING), without scanning the new followers again.
            cursor.execute(
                f"WITH new AS ({insert_followers} RETURNING id) "
                f"INSERT INTO {through_table} (follower_id, subtype_id) "
                "SELECT new.id, %s FROM new ORDER BY new.id",
                [*followers_params, subtype.pk],
            )
        else:
            _subscribe_new_followers(
                cursor,
                insert_followers,
                followers_params,
                (follower_table, through_table),
                [subtype.pk, ct.pk, mailing.pk, boundary, stamp],
            )
    if before:  # followers added by hand: those in the audience get it too
        kept = audience.filter(pk__in=before).values_list("pk", flat=True)
        through.objects.bulk_create(
            through(follower_id=before[pk], subtype_id=subtype.pk) for pk in kept
        )


def _subscribe_new_followers(
    cursor: Any,
    insert_followers: str,
    followers_params: list[object],
    tables: tuple[str, str],
    params: list[object],
) -> None:
    """Two statements where a data-modifying WITH is not available (SQLite): the
    followers, then the subscriptions of the rows stamped by this call (above
    the highest follower id before it, with its ``created_at``)."""
    follower_table, through_table = tables
    cursor.execute(insert_followers, followers_params)
    cursor.execute(
        f"INSERT INTO {through_table} (follower_id, subtype_id) SELECT f.id, %s "
        f"FROM {follower_table} f WHERE f.content_type_id = %s AND "
        "f.object_id = %s AND f.id > %s AND f.contact_id IS NOT NULL AND "
        "f.created_at = %s ORDER BY f.id",
        params,
    )


def mark_sent(*, message_id: int) -> bool:
    """*sending* → *sent* for the mailing of ``message_id`` once its fan-out is
    done (the fan-out task calls it after each run); True if it changed."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.is_fanning_out:
        return False
    changed = Mailing.objects.filter(
        message_id=message_id, state=Mailing.State.SENDING
    ).update(state=Mailing.State.SENT, updated_at=timezone.now())
    return bool(changed)


def resume_stalled_mailings() -> int:
    """Beat, every minute: start the task again for each mailing that lost it
    (posting twice is impossible: :func:`post_mailing` checks under the row lock),
    and mark *sent* a mailing whose fan-out ended unmarked. Returns how many
    were started again."""
    stalled = list(
        Mailing.objects.filter(
            state=Mailing.State.SENDING,
            message__isnull=True,
            sent_at__lt=timezone.now() - STALLED_AFTER,
        ).values_list("pk", flat=True)
    )
    for mailing_id in stalled:
        _start_task(mailing_id)
    unmarked = Mailing.objects.filter(
        state=Mailing.State.SENDING, message__isnull=False
    ).values_list("message_id", flat=True)
    for message_id in unmarked:
        mark_sent(message_id=message_id)
    return len(stalled)


def opt_out(*, address: str, mailing: Mailing | None = None) -> bool:
    """Leave ``address`` out of every later mailing (idempotent); True if new."""
    _row, created = MailingOptOut.objects.get_or_create(
        address=normalize_email(address)[:254], defaults={"mailing": mailing}
    )
    return created
