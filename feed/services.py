"""Post messages, notes and notifications on any record's feed; manage followers.

The one service layer for writing to a feed: views, Celery tasks, routing of
incoming mail and management commands all call :func:`post_message`. Who hears
about a message is decided here (see :mod:`feed.recipients`); outgoing mail is
queued in the same transaction through :mod:`feed.delivery` and
sent on commit, so a rolled-back post emails nobody.
Internal messages (notes, and replies to them) never reach a contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import formataddr, getaddresses

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed import assignments  # (circular: used at call time)
from feed import recipients as rcpt
from feed.attachments import (
    AttachmentInput,
    AttachmentSource,
    check_sizes,
    store_attachments,
)
from feed.defaults import cached_subtypes, ensure_default_data
from feed.errors import EmptyMessage
from feed.html import html_to_text, sanitize_html, text_to_html
from feed.models import (
    Activity,
    ActivityType,
    Follower,
    Message,
    MessageRecipient,
    Notification,
    Subtype,
)
from knowlix import params
from knowlix.models import Contact, Record
from mailservers.mime import make_message_id

__all__ = [
    "AttachmentInput",
    "cancel_activity",
    "ensure_default_data",
    "follow",
    "mark_activity_done",
    "mark_message_read",
    "mark_notifications_read",
    "new_message_id",
    "NewPost",
    "new_record_followers",
    "notify_record_created",
    "notify_users",
    "post_message",
    "post_messages",
    "post_tracking",
    "schedule_activity",
    "unfollow",
]

DEFAULT_SUBTYPE = {
    Message.Kind.EMAIL: Subtype.DISCUSSION,
    Message.Kind.NOTE: Subtype.NOTE,
    Message.Kind.NOTIFICATION: Subtype.STAGE,
}


def new_message_id() -> str:
    """A fresh RFC 5322 Message-ID in our catch-all domain."""
    return make_message_id(params.catchall_domain())


def get_subtype(code: str) -> Subtype:
    subtype = cached_subtypes().get(code)
    if subtype is None:
        ensure_default_data()
        subtype = Subtype.objects.get(code=code)
    return subtype


# --- Followers ----------------------------------------------------------------------


def follow(
    *,
    record: Model,
    user: User | None = None,
    contact: Contact | None = None,
    subtypes: Sequence[Subtype] | None = None,
) -> Follower:
    """Make a user or a contact follow ``record`` (idempotent).

    New followers subscribe to the default subtypes (contacts: the non-internal
    ones). ``subtypes`` replaces the subscription of a new or existing follower.
    """
    if (user is None) == (contact is None):
        raise ValueError("follow() needs exactly one of user or contact")
    ct = ContentType.objects.get_for_model(record)
    lookup: dict[str, object] = {"content_type": ct, "object_id": record.pk}
    if user is not None:
        lookup["user"] = user
    else:
        lookup["contact"] = contact
    follower = Follower.objects.filter(**lookup).first()
    created = False
    if follower is None:
        try:
            with transaction.atomic():
                follower = Follower.objects.create(**lookup)
                created = True
        except IntegrityError:  # followed concurrently
            follower = Follower.objects.get(**lookup)
    if subtypes is not None:
        follower.subtypes.set(subtypes)
    elif created:
        follower.subtypes.add(*_default_subtypes(for_contact=contact is not None))
    return follower


def _default_subtypes(*, for_contact: bool) -> list[Subtype]:
    """What a new follower subscribes to: the default subtypes (contacts: the
    non-internal ones)."""
    return [
        s
        for s in cached_subtypes().values()
        if s.default and not (for_contact and s.internal)
    ]


def unfollow(
    *, record: Model, user: User | None = None, contact: Contact | None = None
) -> None:
    ct = ContentType.objects.get_for_model(record)
    qs = Follower.objects.filter(content_type=ct, object_id=record.pk)
    if user is not None:
        qs.filter(user=user).delete()
    if contact is not None:
        qs.filter(contact=contact).delete()


def _follow_defaults(
    record: Model,
    author: User | None,
    *,
    is_new: bool = False,
    has_followers: bool = True,
) -> list[rcpt.FollowerRow] | None:
    """Make the record's people follow it. On a new record, returns all its
    followers' subscriptions (known exactly, since they were just written)."""
    users, contact = _default_people(record, author)
    if is_new:
        return _follow_new_record(
            record, users=users, contact=contact, has_followers=has_followers
        )
    for user in users:
        follow(record=record, user=user)
    if contact is not None:
        follow(record=record, contact=contact)
    return None


def _default_people(
    record: Model, author: User | None
) -> tuple[list[User], Contact | None]:
    """Who follows a record by default: its users and the author, its contact."""
    people = list(getattr(record, "feed_users", []) or [])
    # A record created for a team (knowlix.teams.apply_team): its members too.
    people += getattr(record, "team_followers", ())
    if author is not None and getattr(author, "pk", None):
        people.append(author)
    users = list({u.pk: u for u in people}.values())
    return users, getattr(record, "feed_contact", None)


def new_record_followers(
    *, record: Model, author: User | None
) -> list[rcpt.FollowerRow]:
    """The followers ``notify_record_created(is_new=True)`` gave ``record``, as
    ``post_message(followers=...)`` rows, without reading them back.

    Only right after ``knowlix.services.create_record`` of a new record, before
    anything else changes who follows it (its "created" notice changes nothing)."""
    users, contact = _default_people(record, author)
    people: list[tuple[int | None, int | None]] = [(u.pk, None) for u in users]
    if contact is not None:
        people.append((None, contact.pk))
    rows: list[rcpt.FollowerRow] = []
    for user_id, contact_id in people:
        subtypes = _default_subtypes(for_contact=contact_id is not None)
        rows += [(user_id, contact_id, s.pk) for s in subtypes] or [
            (user_id, contact_id, None)
        ]
    return rows


def _follow_new_record(
    record: Model,
    *,
    users: list[User],
    contact: Contact | None,
    has_followers: bool = True,
) -> list[rcpt.FollowerRow]:
    """``follow()`` for each of them, at once, on a record created in the current
    transaction: no one else can follow it concurrently, so the missing followers
    are inserted together, with no savepoint each. Returns every follower's
    subscriptions, those already there (one read, unless ``has_followers`` is
    False: a row just inserted with a fresh id) and the new ones."""
    return _follow_new_records([(record, users, contact, has_followers)])[0]


NewFollowers = tuple[Model, list[User], Contact | None, bool]


def _follow_new_records(
    entries: Sequence[NewFollowers],
) -> list[list[rcpt.FollowerRow]]:
    """:func:`_follow_new_record` for several records: one insert of the followers
    and one of their subscriptions for all of them."""
    all_rows: list[list[rcpt.FollowerRow]] = []
    new: list[Follower] = []
    entry_of: list[int] = []  # the entry of each new follower
    for entry, (record, users, contact, has_followers) in enumerate(entries):
        ct = ContentType.objects.get_for_model(record)
        rows: list[rcpt.FollowerRow] = []
        if has_followers:
            rows = list(
                Follower.objects.filter(content_type=ct, object_id=record.pk)
                .order_by("pk")
                .values_list("user_id", "contact_id", "subtypes")
            )
        followed = {(user_id, contact_id) for user_id, contact_id, _s in rows}
        new += [
            Follower(content_type=ct, object_id=record.pk, user=user)
            for user in users
            if (user.pk, None) not in followed
        ]
        if contact is not None and (None, contact.pk) not in followed:
            new.append(Follower(content_type=ct, object_id=record.pk, contact=contact))
        entry_of += [entry] * (len(new) - len(entry_of))
        all_rows.append(rows)
    if not new:
        return all_rows
    Follower.objects.bulk_create(new)
    through = Follower.subtypes.through
    links_of: dict[int, list[int]] = {}
    links = []
    for follower in new:
        subtypes = _default_subtypes(for_contact=follower.contact_id is not None)
        links_of[follower.pk] = [subtype.pk for subtype in subtypes]
        links += [
            through(follower_id=follower.pk, subtype_id=subtype.pk)
            for subtype in subtypes
        ]
    through.objects.bulk_create(links)
    # Each entry's new followers, in insertion order, after its existing ones.
    for follower, entry in zip(new, entry_of, strict=True):
        user_id, contact_id = follower.user_id, follower.contact_id
        all_rows[entry] += [
            (user_id, contact_id, pk) for pk in links_of[follower.pk]
        ] or [(user_id, contact_id, None)]
    return all_rows


# --- Posting ------------------------------------------------------------------------


def _sender_address(user: User | None, contact: Contact | None) -> str:
    """``Name <address>`` of the author, for messages that do not give their From."""
    if user is not None and user.email:
        return formataddr((user.get_full_name() or user.get_username(), user.email))
    if contact is not None and contact.email:
        return formataddr((str(contact), contact.email))
    return ""


@dataclass
class NewPost:
    """One message to post: the arguments of :func:`post_message`, as data."""

    record: Model
    kind: str
    author: User | None = None
    author_contact: Contact | None = None
    body_html: str = ""
    body_text: str = ""
    subject: str = ""
    subtype: str | Subtype | None = None
    direction: str | None = None
    email_from: str = ""
    message_id: str | None = None
    parent: Message | None = None
    recipients: Sequence[str] = ()
    attachments: Sequence[AttachmentSource] = ()
    is_unverified_sender: bool = False
    auth_verdict: str = ""
    created_at: dt.datetime | None = None
    followers: Sequence[rcpt.FollowerRow] | None = None


def post_message(
    *,
    record: Model,
    kind: str,
    author: User | None = None,
    author_contact: Contact | None = None,
    body_html: str = "",
    body_text: str = "",
    subject: str = "",
    subtype: str | Subtype | None = None,
    direction: str | None = None,
    email_from: str = "",
    message_id: str | None = None,
    parent: Message | None = None,
    recipients: Sequence[str] = (),
    attachments: Sequence[AttachmentSource] = (),
    is_unverified_sender: bool = False,
    auth_verdict: str = "",
    created_at: dt.datetime | None = None,
    followers: Sequence[rcpt.FollowerRow] | None = None,
) -> Message:
    """Post a message on ``record``'s feed, notify its followers, queue its mail.

    - ``kind``: ``Message.Kind`` — ``email`` (to/from outside), ``note`` (internal)
      or ``notification`` (system event; give ``subtype``, e.g. ``"stage"``).
    - ``author`` (a user) or ``author_contact`` (incoming mail from a contact).
    - ``body_html`` is sanitized here; a text-only body may come as ``body_text``.
    - ``direction``: ``"in"`` for received mail (``message_id``, ``email_from``,
      ``parent`` and ``recipients`` = its To/Cc addresses come from the mail);
      default ``"out"`` for emails, ``"internal"`` otherwise.
    - ``recipients``: for an outgoing email, addresses added beside the followers;
      they become contacts following the record.
    - ``attachments``: ``AttachmentInput`` (bytes) or Django ``UploadedFile``;
      raises ``AttachmentTooLarge`` before anything is written.
    - ``followers``: the record's followers as ``(user_id, contact_id,
      subtype_id)`` rows, only when the caller knows them exactly (it created the
      record and its followers in this transaction); read here otherwise.

    A reply to an internal message stays internal. Authors follow what they write.
    """
    post = NewPost(
        record=record,
        kind=kind,
        author=author,
        author_contact=author_contact,
        body_html=body_html,
        body_text=body_text,
        subject=subject,
        subtype=subtype,
        direction=direction,
        email_from=email_from,
        message_id=message_id,
        parent=parent,
        recipients=recipients,
        attachments=attachments,
        is_unverified_sender=is_unverified_sender,
        auth_verdict=auth_verdict,
        created_at=created_at,
        followers=followers,
    )
    return post_messages([post])[0]


def post_messages(posts: Sequence[NewPost]) -> list[Message]:
    """:func:`post_message` for many posts at once, in order, with one statement per
    table instead of one per post (messages, recipients, notifications), and the
    delivery plans' reads shared (see ``feed.recipients.Lookups``). The same rules
    apply to each post; nothing is written if any post is refused (empty, too large).
    """
    prepared = [_prepare_post(post) for post in posts]
    # Checked above, written below in the posts' own transaction, or in the
    # caller's without a savepoint (a failure here fails the caller's transaction).
    with transaction.atomic(savepoint=False):
        messages = Message.objects.bulk_create([message for message, _f in prepared])
        lookups = rcpt.Lookups()
        lookups.users_named(  # the @mentions of all posts, read once
            name
            for message, _f in prepared
            if message.kind != Message.Kind.NOTIFICATION
            for name in rcpt.mentioned_usernames(message.body_text)
        )
        lookups.known_contacts(  # the To/Cc of received mail, read once for all
            [
                address
                for post, (message, _f) in zip(posts, prepared, strict=True)
                if message.direction == Message.Direction.INCOMING
                for _name, address in getaddresses(list(post.recipients))
            ]
        )
        plans = []
        for post, message, (_m, files) in zip(posts, messages, prepared, strict=True):
            if files:
                store_attachments(message=message, files=files)
            plans.append(_plan_post(post, message, lookups))
        MessageRecipient.objects.bulk_create(
            [row for plan in plans for row in plan.recipient_rows]
        )
        rcpt.create_notifications_for(
            [
                (message, plan.notified_users)
                for message, plan in zip(messages, plans, strict=True)
            ]
        )
        for message, plan in zip(messages, plans, strict=True):
            rcpt.queue_planned_mail(message=message, plan=plan)  # sent on commit
    return messages


def _prepare_post(post: NewPost) -> tuple[Message, list[AttachmentInput]]:
    """Check a post and build its unsaved message (raises before any write)."""
    kind = Message.Kind(post.kind)
    files = check_sizes(post.attachments)
    direction = post.direction or (
        Message.Direction.OUTGOING
        if kind == Message.Kind.EMAIL
        else Message.Direction.INTERNAL
    )
    body_html, body_text = post.body_html, post.body_text
    clean_html = sanitize_html(body_html) if body_html else text_to_html(body_text)
    # What a user writes must say something; received mail is kept as it came.
    typed = (
        kind != Message.Kind.NOTIFICATION and direction != Message.Direction.INCOMING
    )
    if typed and not files and not _has_text(clean_html):
        raise EmptyMessage()
    subtype = post.subtype
    if not isinstance(subtype, Subtype):
        subtype = get_subtype(subtype or DEFAULT_SUBTYPE[kind])
    parent = post.parent
    is_internal = kind == Message.Kind.NOTE or bool(parent and parent.is_internal)
    if is_internal and subtype.code == Subtype.DISCUSSION:
        subtype = get_subtype(Subtype.NOTE)
    author, author_contact = post.author, post.author_contact
    message = Message(
        content_object=post.record,
        kind=kind,
        direction=direction,
        subtype=subtype,
        author_user=author,
        author_contact=author_contact,
        email_from=(post.email_from or _sender_address(author, author_contact))[:320],
        subject=(post.subject or "")[:998],
        body_html=clean_html,
        body_text=body_text or html_to_text(clean_html),
        message_id=(post.message_id or new_message_id())[:998],
        parent=parent,
        is_internal=is_internal,
        is_unverified_sender=post.is_unverified_sender,
        auth_verdict=post.auth_verdict[:200],
        created_at=post.created_at or timezone.now(),
    )
    return message, files


def _plan_post(
    post: NewPost, message: Message, lookups: rcpt.Lookups
) -> rcpt.DeliveryPlan:
    """Who hears about the (written) message; makes its author follow the record."""
    record, subtype = post.record, message.subtype
    assert subtype is not None
    # One read of the followers serves the author's follow and the plan (a new
    # author follower changes nothing in it: the author never hears of a post).
    if post.followers is not None:
        following = rcpt.following_from_rows(post.followers, subtype=subtype)
    else:
        following = rcpt.read_following(record=record, subtype=subtype)
    author, author_contact = post.author, post.author_contact
    if author is not None and author.pk not in following.users:
        follow(record=record, user=author)
    if (
        author_contact is not None
        and not message.is_internal
        and author_contact.pk not in following.contacts
    ):
        follow(record=record, contact=author_contact)
    return rcpt.plan_delivery(
        message=message,
        record=record,
        extra_addresses=post.recipients,
        following=following,
        lookups=lookups,
    )


def _has_text(clean_html: str) -> bool:
    return bool(html_to_text(clean_html).strip()) or "<img" in clean_html


@transaction.atomic
def notify_users(
    *,
    target: Model,
    users: Iterable[User],
    subject: str,
    body_html: str,
    author: User | None = None,
) -> Message:
    """Post a system notice on ``target``'s feed and put it in each user's inbox.

    For things that are not business records and have no followers to speak of
    (a sending domain, an OAuth grant, an incoming server): the caller names who
    must hear about it, and only they do (active users, once each, never the
    author). ``body_html`` is sanitized here. Users who prefer email also get it by
    mail, auto-submitted and without a reply address. Opening the notice needs
    ``target.get_absolute_url()`` and ``target.can_be_opened_by(user)``.

    Not deduplicated: call it once per problem, where the target's state flips
    (inside that transaction, so the notice exists exactly when the flag does).
    """
    clean_html = sanitize_html(body_html)
    message = Message.objects.create(
        content_object=target,
        kind=Message.Kind.NOTIFICATION,
        direction=Message.Direction.INTERNAL,
        subtype=None,  # not a record event: the inbox shows it as "Notification"
        author_user=author,
        email_from=_sender_address(author, None)[:320],
        subject=subject[:998],
        body_html=clean_html,
        body_text=html_to_text(clean_html),
        message_id=new_message_id(),
    )
    plan = rcpt.plan_notice(message=message, users=users)
    MessageRecipient.objects.bulk_create(plan.recipient_rows)
    rcpt.create_notifications(message=message, users=plan.notified_users)
    rcpt.queue_planned_mail(message=message, plan=plan)  # sent on commit
    return message


def notify_record_created(
    *, record: Model, author: User | None, is_new: bool = False
) -> Message:
    """Author, owner, record users and contact follow; post "<kind> created".

    Call in the transaction that created the record. ``is_new``: the record's row
    was just inserted with a fresh id, so nobody follows it yet (not read)."""
    return notify_records_created([(record, author, is_new)])[0]


def notify_records_created(
    entries: Sequence[tuple[Model, User | None, bool]],
) -> list[Message]:
    """:func:`notify_record_created` for several records (``(record, author,
    is_new)``), their followers and notices written together."""
    followers = _follow_new_records(
        [
            (record, *_default_people(record, author), not is_new)
            for record, author, is_new in entries
        ]
    )
    posts = []
    for (record, author, _is_new), rows in zip(entries, followers, strict=True):
        label = str(record._meta.verbose_name).capitalize()
        text = _("%(kind)s created") % {"kind": label}
        posts.append(
            NewPost(
                record=record,
                kind=Message.Kind.NOTIFICATION,
                subtype=Subtype.CREATED,
                author=author,
                subject=text,
                body_html="<p>" + escape(text) + "</p>",
                followers=rows,  # the author is among them: no follow() in the post
            )
        )
    return post_messages(posts)


def post_tracking(
    *,
    record: Model,
    author: User | None,
    changes: list[tuple[str, str, str]],
) -> Message:
    """Post a "stage changed" notification listing ``(field, before, after)``."""
    _follow_defaults(record, None)  # a new assignee starts following
    items = "".join(
        f"<li>{escape(label)}: {escape(before or '—')} → {escape(after or '—')}</li>"
        for label, before, after in changes
    )
    return post_message(
        record=record,
        kind=Message.Kind.NOTIFICATION,
        subtype=Subtype.STAGE,
        author=author,
        subject=", ".join(f"{label}: {after}" for label, _b, after in changes)[:998],
        body_html=f"<ul>{items}</ul>",
    )


# --- Activities ---------------------------------------------------------------------


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
        assignments.notify_activity(activity=activity, record=record)
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


# --- Inbox --------------------------------------------------------------------------


def mark_notifications_read(
    *, user: User, notification_ids: Sequence[int] | None = None
) -> int:
    """Mark some (or, with ``None``, all) of the user's notifications read."""
    qs = Notification.objects.filter(user=user, is_read=False)
    if notification_ids is not None:
        qs = qs.filter(pk__in=list(notification_ids))
    return qs.update(is_read=True, read_at=timezone.now())


def mark_message_read(*, user: User, message: Message) -> None:
    Notification.objects.filter(user=user, message=message, is_read=False).update(
        is_read=True, read_at=timezone.now()
    )
