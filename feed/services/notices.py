"""System notices: "<kind> created", tracked changes, and notices to chosen users.

Call inside the transaction that changes the state being announced, so the notice
exists exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed import recipients as rcpt
from feed.models import Message, MessageRecipient, Subtype
from feed.services.followers import (
    _default_people,
    _follow_defaults,
    _follow_new_records,
)
from feed.services.posting import (
    NewPost,
    _sender_address,
    new_message_id,
    post_message,
    post_messages,
)
from knowlix.html import html_to_text, sanitize_html


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
