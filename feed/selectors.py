"""Reads of the feed: each returns rows already joined/prefetched for its page.

The first screen of a record's feed costs a fixed number of queries whatever the
number of messages (see bench/feed.py): one page of messages with their authors,
then one query each for attachments (with blobs) and recipients (with delivery).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    Count,
    Exists,
    Max,
    Min,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from feed.delivery import delivery_stamp_columns, recipient_prefetches
from feed.models import (
    Activity,
    ActivityType,
    Attachment,
    Follower,
    ImageSender,
    Message,
    MessageRecipient,
    Notification,
    RecordLinkMixin,
    Subtype,
)
from knowlix.access import can_view_record
from knowlix.models import Contact, Mailing, MailingOptOut
from mailservers.models import OutgoingRecipient

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

FEED_PAGE_SIZE = 30
MAX_FOCUS = 500
# Recipients shown under a message (with their delivery state); a post to 100,000
# followers shows these and the count of the others, never loads them all.
SHOWN_RECIPIENTS = 20


def unread_count(user: User | AnonymousUser) -> int:
    """Unread inbox notifications of ``user`` (0 when anonymous)."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, is_read=False).count()


def feed_stamp(*, record: Model) -> str:
    """Changes whenever the record's feed does: a message is posted or deleted, or
    a delivery state changes. One query of indexed aggregates, no rows read: what
    a page polls to learn that nothing changed (``feed:changes``)."""
    ct = ContentType.objects.get_for_model(record)
    messages = (
        Message.objects.filter(content_type=ct, object_id=record.pk)
        .order_by()
        .values("content_type")
    )
    row = (
        ContentType.objects.filter(pk=ct.pk)
        .annotate(
            messages=Subquery(messages.annotate(n=Count("id")).values("n")),
            last_message=Subquery(messages.annotate(last=Max("id")).values("last")),
            **delivery_stamp_columns(content_type_id=ct.pk, object_id=record.pk),
        )
        .get()
    )
    delivered = getattr(row, "delivered", None)
    if isinstance(delivered, dt.datetime):
        delivered = f"{delivered.timestamp():.6f}"
    counts = ("messages", "last_message", "deliveries")
    return "-".join(str(getattr(row, k, 0) or 0) for k in counts) + f"-{delivered or 0}"


CONTACT_FEED_SIZE = 50


def contact_messages(
    *, contact_id: int, user: User, size: int = CONTACT_FEED_SIZE
) -> list[Message]:
    """The newest messages from or to a contact, across every record the user may
    see (each with ``linked_record`` set), newest first."""
    ids = (
        Message.objects.filter(
            Q(author_contact_id=contact_id) | Q(recipients__contact_id=contact_id)
        )
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .distinct()
    )
    rows = list(
        message_queryset()
        .filter(pk__in=list(ids[: size * 2]))
        .select_related("content_type")
        .order_by("-created_at", "-id")
    )
    attach_records(rows)
    visible = [
        m
        for m in rows
        if m.linked_record is not None and can_view_record(user, m.linked_record)
    ]
    return visible[:size]


def _record_filter(record: Model) -> dict:
    return {
        "content_type": ContentType.objects.get_for_model(record),
        "object_id": record.pk,
    }


def recipient_queryset() -> QuerySet[MessageRecipient]:
    """Recipients with what is needed to show their delivery state."""
    return MessageRecipient.objects.prefetch_related(*recipient_prefetches()).order_by(
        "id"
    )


def message_queryset() -> QuerySet[Message]:
    """Messages with authors, subtype and attachments prefetched, and their first
    ``SHOWN_RECIPIENTS`` recipients (``shown_recipients``) with the count of all
    (``recipient_count``); the parent (with its author) is joined so "In reply
    to" costs no query per row."""
    counted = (
        MessageRecipient.objects.filter(message=OuterRef("pk"))
        .order_by()
        .values("message")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Message.objects.annotate(recipient_count=Coalesce(Subquery(counted), 0))
        .select_related(
            "author_user",
            "author_contact",
            "subtype",
            "parent__author_user",
            "parent__author_contact",
        )
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=Attachment.objects.select_related("blob").order_by("id"),
            ),
            Prefetch(
                "recipients",
                # Sliced: at most this many rows per message (a window function).
                queryset=recipient_queryset()[:SHOWN_RECIPIENTS],
                to_attr="shown_recipients",
            ),
        )
    )


@dataclass
class FeedPage:
    messages: list[Message]
    has_more: bool

    @property
    def oldest_id(self) -> int | None:
        return self.messages[-1].pk if self.messages else None


def feed_page(
    *,
    record: Model,
    before_id: int | None = None,
    focus_id: int | None = None,
    size: int = FEED_PAGE_SIZE,
) -> FeedPage:
    """One page of ``record``'s messages, newest first.

    ``before_id`` pages back from a message; ``focus_id`` makes the page long enough
    to reach that message (a link from the inbox), up to ``MAX_FOCUS`` messages.
    """
    qs = message_queryset().filter(**_record_filter(record))
    if before_id is not None:
        anchor = _created_at(before_id)
        if anchor is not None:
            qs = qs.filter(created_at__lte=anchor).exclude(
                created_at=anchor, id__gte=before_id
            )
    if focus_id is not None and before_id is None:
        anchor = _created_at(focus_id)
        if anchor is not None:
            older_than_page = (
                Message.objects.filter(**_record_filter(record), created_at__gte=anchor)
                .order_by()
                .count()
            )
            size = min(max(size, older_than_page), MAX_FOCUS)
    rows = list(qs.order_by("-created_at", "-id")[: size + 1])
    return FeedPage(messages=rows[:size], has_more=len(rows) > size)


def _created_at(message_id: int) -> dt.datetime | None:
    row = Message.objects.filter(pk=message_id).values("created_at").first()
    return row["created_at"] if row else None


def record_followers(*, record: Model, limit: int | None = None) -> list[Follower]:
    """The record's followers in order, the first ``limit`` of them if given (a
    mailing's record has its whole audience as followers)."""
    rows = (
        Follower.objects.filter(**_record_filter(record))
        .select_related("user", "contact")
        .prefetch_related("subtypes")
        .order_by("id")
    )
    return list(rows[:limit] if limit is not None else rows)


def follower_count(*, record: Model) -> int:
    return Follower.objects.filter(**_record_filter(record)).count()


def user_follower(*, record: Model, user: User) -> Follower | None:
    return Follower.objects.filter(**_record_filter(record), user=user).first()


def record_activities(*, record: Model) -> list[Activity]:
    return list(
        Activity.objects.filter(**_record_filter(record)).select_related(
            "activity_type", "assignee"
        )
    )


def subtypes(*, record: Model | None = None) -> list[Subtype]:
    """The subtypes a follower of ``record`` may choose: "Mailings" (a mailing's
    audience, subscribed to it alone) only on a mailing; every one without a
    record."""
    rows = list(Subtype.objects.all())
    if record is None or isinstance(record, Mailing):
        return rows
    return [s for s in rows if s.code != Subtype.MAILING]


def activity_types() -> list[ActivityType]:
    return list(ActivityType.objects.all())


def inbox(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user).select_related(
        "message__author_user",
        "message__author_contact",
        "message__content_type",
        "message__subtype",
    )
    if unread_only:
        qs = qs.filter(is_read=False)
    return qs.order_by("-created_at", "-id")


@dataclass
class ActivityGroup:
    state: str  # an Activity.State value
    label: StrOrPromise
    activities: list[Activity]


def my_activities(*, user: User, today: dt.date | None = None) -> list[ActivityGroup]:
    """The user's activities across every record kind, grouped overdue/today/planned.

    Activities on records the user may no longer see are left out.
    """
    today = today or timezone.localdate()
    rows = list(
        Activity.objects.filter(assignee=user)
        .select_related("activity_type", "content_type")
        .order_by("due_date", "id")
    )
    attach_records(rows)
    groups = {s: ActivityGroup(s, label, []) for s, label in Activity.State.choices}
    for activity in rows:
        if activity.linked_record is None:
            continue
        if not can_view_record(user, activity.linked_record):
            continue
        groups[activity.state_on(today)].activities.append(activity)
    return list(groups.values())


def attach_records(rows: Sequence[RecordLinkMixin]) -> None:
    """Set ``linked_record`` on rows with a generic link: one query per record kind."""
    wanted: dict[int, set[int]] = {}
    for row in rows:
        wanted.setdefault(row.content_type_id, set()).add(row.object_id)
    found: dict[tuple[int, int], Model] = {}
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        for obj in model._default_manager.filter(pk__in=ids):
            found[(ct_id, obj.pk)] = obj
    for row in rows:
        row.linked_record = found.get((row.content_type_id, row.object_id))


def due_activities_by_user(*, today: dt.date) -> dict[int, list[Activity]]:
    """Activities due today or overdue, per assignee id (for the daily digest)."""
    rows = list(
        Activity.objects.filter(due_date__lte=today, assignee__is_active=True)
        .select_related("activity_type", "assignee", "content_type")
        .order_by("assignee_id", "due_date", "id")
    )
    attach_records(rows)
    by_user: dict[int, list[Activity]] = {}
    for activity in rows:
        if activity.linked_record is not None:
            by_user.setdefault(activity.assignee_id, []).append(activity)
    return by_user


def image_senders(*, user: User | AnonymousUser) -> set[str]:
    """The addresses whose remote images ``user`` always shows (lower case)."""
    if not user.is_authenticated:
        return set()
    return set(ImageSender.objects.filter(user=user).values_list("address", flat=True))


def get_attachment(*, attachment_id: int) -> Attachment | None:
    return (
        Attachment.objects.select_related("blob", "message", "message__content_type")
        .filter(pk=attachment_id)
        .first()
    )


# --- Mailings ----------------------------------------------------------------------

# A contact whose mail hard-bounced more often than this is left out of mailings.
MAILING_BOUNCE_LIMIT = 2


def mailing_audience(mailing: Mailing) -> QuerySet[Contact]:
    """The contacts a mailing goes to: those with an address (of the company it
    names, if any), not opted out, not bouncing; one contact per address (the
    oldest), so nobody gets two copies."""
    contacts = Contact.objects.exclude(email_normalized="").filter(
        bounce_count__lte=MAILING_BOUNCE_LIMIT
    )
    if mailing.audience == Mailing.Audience.COMPANY:
        contacts = contacts.filter(company__iexact=mailing.company.strip())
    opted_out = MailingOptOut.objects.filter(address=OuterRef("email_normalized"))
    contacts = contacts.exclude(Exists(opted_out))  # an anti-join, not NOT IN
    first_of_each = (
        contacts.order_by()
        .values("email_normalized")
        .annotate(first=Min("id"))
        .values("first")
    )
    return contacts.filter(pk__in=first_of_each)


@dataclass(frozen=True)
class MailingStats:
    audience: int
    queued: int
    sent: int
    failed: int
    bounced: int
    opted_out: int

    def rows(self) -> list[tuple[str, int]]:
        """(label, figure) in the order the mailing page shows them."""
        return [
            ("Audience", self.audience),
            ("Queued", self.queued),
            ("Sent", self.sent),
            ("Failed", self.failed),
            ("Bounced", self.bounced),
            ("Opted out", self.opted_out),
        ]


def mailing_stats(mailing: Mailing) -> MailingStats:
    """What became of a sent mailing's mail, from the queue's recipient states
    (no tracking pixel): queued (waiting or retried later), sent, failed (refused
    by a server, or an address that could not be queued), bounced, and how many
    used its unsubscribe link. Three queries, whatever the audience."""
    opted_out = MailingOptOut.objects.filter(mailing=mailing).count()
    if mailing.message_id is None:
        return MailingStats(0, 0, 0, 0, 0, opted_out)
    states = dict(
        OutgoingRecipient.objects.filter(mail__feed_message_id=mailing.message_id)
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    refused = (
        MessageRecipient.objects.filter(message_id=mailing.message_id)
        .exclude(delivery_error="")
        .filter(deliveries__isnull=True)
        .count()
    )
    kinds = OutgoingRecipient.State
    return MailingStats(
        audience=mailing.audience_size,
        queued=sum(
            states.get(s, 0) for s in (kinds.QUEUED, kinds.SENDING, kinds.DEFERRED)
        ),
        sent=states.get(kinds.SENT, 0),
        failed=states.get(kinds.FAILED, 0) + states.get(kinds.CANCELLED, 0) + refused,
        bounced=states.get(kinds.BOUNCED, 0),
        opted_out=opted_out,
    )
