"""Post messages and notes on any record's feed.

The one way to write a message: views, Celery tasks, routing of incoming mail and
management commands all call :func:`post_message` (or its batch form). Who hears
about a message is decided in :mod:`feed.recipients`; outgoing mail is queued in the
same transaction and sent on commit, so a rolled-back post emails nobody. Internal
messages (notes, and replies to them) never reach a contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formataddr

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from feed import fanout
from feed import recipients as rcpt
from feed.attachments import (
    AttachmentInput,
    AttachmentSource,
    check_sizes,
    store_attachments,
)
from feed.defaults import cached_subtypes, ensure_default_data
from feed.errors import EmptyMessage
from feed.models import Message, Subtype
from feed.services.followers import follow
from knowlix import params
from knowlix.bulk import insert_instances
from knowlix.html import html_to_text, sanitize_html, text_to_html
from knowlix.models import Contact
from mailservers.mime import make_message_id

_CONTENT_OBJECT = Message._meta.get_field("content_object")  # its record
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
    cc: Sequence[str] = ()
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
    cc: Sequence[str] = (),
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
    - ``recipients`` (and ``cc``): for an outgoing email, the To (and Cc) the
      author typed: they get one mail, addressed as typed, and each follower
      contact gets a mail of its own;
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
        cc=cc,
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
        messages = insert_instances([message for message, _f in prepared])
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
                for _name, address in rcpt.parse_addresses(post.recipients)
            ]
        )
        plans = []
        for post, message, (_m, files) in zip(posts, messages, prepared, strict=True):
            if files:
                store_attachments(message=message, files=files)
            plans.append(_plan_post(post, message, lookups))
        insert_instances([row for plan in plans for row in plan.recipient_rows])
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
    record = post.record
    message = Message(
        # What ``content_object=record`` sets, without Model.__init__'s slow path
        # for a non-field keyword (~15 µs a message); cached as it would be below.
        content_type=ContentType.objects.db_manager(record._state.db).get_for_model(
            record
        ),
        object_id=record.pk,
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
    _CONTENT_OBJECT.set_cached_value(message, record)
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
        total, until = fanout.subscribed(record=record, subtype=subtype)
        if total > fanout.INLINE_FOLLOWERS:  # a task tells them (feed.fanout)
            return _plan_fan_out(post, message, lookups, total=total, until=until)
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
    plan = rcpt.plan_delivery(
        message=message,
        record=record,
        extra_addresses=post.recipients,
        cc_addresses=post.cc,
        following=following,
        lookups=lookups,
    )
    write_plan(record=record, plan=plan)
    return plan


def write_plan(*, record: Model, plan: rcpt.DeliveryPlan) -> None:
    """Write what the plan decided besides mail: new contacts (in one statement),
    and the contacts that start following the record."""
    if plan.new_contacts:
        Contact.objects.bulk_create(plan.new_contacts)
    for contact in plan.follow_contacts:
        follow(record=record, contact=contact)


def _plan_fan_out(
    post: NewPost, message: Message, lookups: rcpt.Lookups, *, total: int, until: int
) -> rcpt.DeliveryPlan:
    """The post's own part of a fan-out (its typed recipients and ``@mentions``);
    the followers are told by the task, chunk by chunk."""
    record = post.record
    if post.author is not None:
        follow(record=record, user=post.author)
    if post.author_contact is not None and not message.is_internal:
        follow(record=record, contact=post.author_contact)
    fanout.start_fan_out(message=message, total=total, until=until)
    return rcpt.plan_delivery(
        message=message,
        record=record,
        extra_addresses=post.recipients,
        following=rcpt.Following(),
        lookups=lookups,
    )


def _has_text(clean_html: str) -> bool:
    return bool(html_to_text(clean_html).strip()) or "<img" in clean_html
