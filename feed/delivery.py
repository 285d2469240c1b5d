"""The feed's one door to outgoing mail: turn a posted message into queued mail.

Called inside ``post_message``'s transaction: the ``OutgoingMail`` rows commit (or
roll back) with the message, and ``queue_mail`` sends only once the transaction
commits, so a rolled-back post never emails anyone. A mail that cannot be queued
(bad address, too large) does not undo the post: the reason is stored on the
message's recipients and shown in the feed. A post reaches ``mailservers`` only
through here, with its thread headers computed here (the queue never reads the feed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Max, Model, Prefetch, Subquery
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from feed.errors import NothingToResend
from feed.models import (
    Attachment,
    Message,
    MessageRecipient,
    Subtype,
    delivery_state,
)
from knowlix import params
from knowlix.models import Record
from knowlix.unsubscribe import UnsubscribeLinks
from mailservers import mime
from mailservers.errors import MailServerError
from mailservers.models import OutgoingRecipient
from mailservers.personalize import CopyLines
from mailservers.services.outgoing import (
    MailCopy,
    MailRecipient,
    copy_message_id,
    queue_mail_copies,
)

logger = logging.getLogger(__name__)

# Where a mailing's footer links to the copy's own unsubscribe page: each copy gets
# its own link in place of this (``mailservers.personalize``).
UNSUBSCRIBE_PLACEHOLDER = "knowlix-unsubscribe-link-placeholder"


@dataclass(frozen=True)
class Addressee:
    address: str
    name: str = ""
    kind: str = "to"  # "to" or "cc": the header it goes in


def absolute_url(path: str) -> str:
    return settings.KNOWLIX_BASE_URL.rstrip("/") + path


def _sender(message: Message) -> tuple[str, str]:
    """(name, address) of the From header: the author, never a spoofed customer."""
    if message.author_user_id and (user := message.author_user) is not None:
        name = user.get_full_name() or user.get_username()
        return name, user.email or params.default_from_address()
    if message.author_contact_id:
        name = str(message.author_contact)
        if message.is_unverified_sender:  # never in the name of whom it claims
            name = _("%(name)s (unverified)") % {"name": name}
        return name, params.default_from_address()
    return "Knowlix", params.default_from_address()


def _mail_parts(message: Message) -> list[mime.MailPart]:
    parts = []
    for attachment in Attachment.objects.filter(message=message).select_related("blob"):
        with attachment.blob.file.open("rb") as fh:
            content = fh.read()
        parts.append(
            mime.MailPart(
                filename=attachment.filename,
                content=content,
                mimetype=attachment.mimetype,
                content_id=attachment.content_id,
            )
        )
    return parts


def is_mailing_mail(message: Message, *, for_users: bool) -> bool:
    """A mailing's email to its audience: its own look, an unsubscribe link."""
    subtype = message.subtype
    return not for_users and subtype is not None and subtype.code == Subtype.MAILING


def unsubscribe_lines(links: UnsubscribeLinks, address: str) -> CopyLines:
    """A mailing copy's own lines: the RFC 8058 one-click unsubscribe headers
    (``List-Unsubscribe`` is an https URL that takes a POST) and the footer link."""
    url = links.url(address)
    return CopyLines(
        headers=[
            ("List-Unsubscribe", f"<{url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
        values=[(UNSUBSCRIBE_PLACEHOLDER, url)],
    )


def render_message_mail(
    *, message: Message, record: Model, for_users: bool
) -> tuple[str, str, str]:
    """(subject, text, html) of the mail carrying ``message`` (a mailing's email
    has its own templates, with the footer's unsubscribe placeholder)."""
    path = record.get_absolute_url() if hasattr(record, "get_absolute_url") else "/"
    # Only business records have a feed page to land on and a reply address; a
    # notice about anything else (a domain, a server) links to that object's page.
    is_record = isinstance(record, Record)
    if is_record:
        path = f"{path}?message={message.pk}#message-{message.pk}"
    context = {
        "message": message,
        "record": record,
        "is_record": is_record,
        "record_url": absolute_url(path),
        "for_users": for_users,
        "preferences_url": absolute_url("/preferences/"),
        "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
    }
    name = (
        "mailing" if is_mailing_mail(message, for_users=for_users) else "feed_message"
    )
    subject = render_to_string(f"emails/{name}/subject.txt", context)
    text = render_to_string(f"emails/{name}/body.txt", context)
    html = render_to_string(f"emails/{name}/body.html", context)
    return " ".join(subject.split()), text, html


def queue_message_copies(
    *,
    message: Message,
    copies: list[list[Addressee]],
    for_users: bool,
    own_id: bool = True,
    rows: Sequence[MessageRecipient] | None = None,
) -> None:
    """Queue ``message`` as one mail per copy (each copy's addressees in its
    To/Cc): customers, or colleagues. Call inside the posting transaction.

    An unusable address fails alone; a mail that cannot be queued at all (too
    large) fails for everyone. Failures are stored on the recipients. ``own_id``
    False: fresh Message-IDs even for our own message (a resend). ``rows``: the
    copies' saved recipient rows when the caller has them (else they are read).
    """
    copies = [copy for copy in copies if copy]
    if not copies:
        return
    record = message.content_object
    assert record is not None  # the message was just posted on it
    if rows is None or any(r.pk is None for r in rows):
        # Only these copies' rows: a big post's fan-out calls this once per chunk.
        rows = list(
            MessageRecipient.objects.filter(
                message=message,
                address__in=[a.address for copy in copies for a in copy],
            ).only("pk", "address", "user_id")
        )
    by_address = {
        r.address.lower(): r for r in rows if (r.user_id is not None) == for_users
    }
    # Our own message to customers carries its Message-ID (the first copy; the
    # others its family), so their replies thread.
    own_id = (
        own_id and not for_users and message.direction != Message.Direction.INCOMING
    )
    links = (
        UnsubscribeLinks(mailing_id=record.pk)
        if is_mailing_mail(message, for_users=for_users)
        else None
    )
    mail_copies = [
        MailCopy(
            recipients=[
                MailRecipient(
                    address=a.address,
                    name=a.name,
                    kind=a.kind,
                    message_recipient_id=getattr(
                        by_address.get(a.address.lower()), "pk", None
                    ),
                )
                for a in copy
            ],
            message_id=copy_message_id(message.message_id, n) if own_id else "",
            lines=unsubscribe_lines(links, copy[0].address) if links else None,
        )
        for n, copy in enumerate(copies)
    ]
    subject, text, html = render_message_mail(
        message=message, record=record, for_users=for_users
    )
    name, address = _sender(message)
    in_reply_to, references = message_thread_headers(message, own_id=own_id)
    every_row = [r for c in mail_copies for r in c.recipients]
    try:
        with transaction.atomic():
            queued = queue_mail_copies(
                from_address=address,
                from_name=name,
                copies=mail_copies,
                subject=subject,
                body_html=html,
                body_text=text,
                # Only business records have a reply address (reply+<token>@...).
                record=record if isinstance(record, Record) else None,
                feed_message_id=message.pk,
                attachments=_mail_parts(message),
                in_reply_to=in_reply_to,
                references=references,
                auto_submitted=for_users or message.kind == Message.Kind.NOTIFICATION,
            )
    except MailServerError as exc:
        logger.info("feed message %s: mail not queued: %s", message.pk, exc)
        _store_error(every_row, exc.user_message)
        return
    for recipient, reason in queued.refused:
        _store_error([recipient], reason)


def _store_error(recipients: list[MailRecipient], reason: str) -> None:
    MessageRecipient.objects.filter(
        pk__in=[r.message_recipient_id for r in recipients if r.message_recipient_id]
    ).update(delivery_error=reason[:500])


@transaction.atomic
def resend_to_recipient(*, recipient: MessageRecipient) -> None:
    """Queue ``recipient``'s mail of its message again, to that address alone (a
    new mail with its own Message-ID of the thread, its own delivery state).

    Only when its last delivery failed or bounced (``NothingToResend``); locks the
    recipient row, so two clicks queue one mail.
    """
    recipient = MessageRecipient.objects.select_for_update().get(pk=recipient.pk)
    state, _reason = delivery_state(recipient)
    if state not in (OutgoingRecipient.State.FAILED, OutgoingRecipient.State.BOUNCED):
        raise NothingToResend()
    message = recipient.message
    MessageRecipient.objects.filter(pk=recipient.pk).update(delivery_error="")
    for_users = recipient.user_id is not None
    copy = [Addressee(recipient.address, recipient.name)]
    # A fresh id in the thread: the first one is taken by the original mail.
    queue_message_copies(
        message=message, copies=[copy], for_users=for_users, own_id=False
    )


def message_thread_headers(message: Message, *, own_id: bool) -> tuple[str, list[str]]:
    """(In-Reply-To, References) of a mail of ``message``: its parent's id, else the
    record's thread. ``own_id``: the mail carries the message's Message-ID."""
    parent = message.parent
    if parent is not None:
        return parent.message_id, [parent.message_id]
    record = message.content_object
    if not isinstance(record, Record):  # only business records thread their mail
        return "", []
    return thread_headers(
        record, exclude_message_id=message.message_id if own_id else ""
    )


def thread_headers(
    record: Model, *, exclude_message_id: str = ""
) -> tuple[str, list[str]]:
    """(In-Reply-To, References) chaining to the record's feed: root, then latest."""
    ct = ContentType.objects.get_for_model(record)
    ids = (
        Message.objects.filter(content_type=ct, object_id=record.pk)
        .exclude(message_id__in=["", exclude_message_id])
        .order_by("created_at", "id")
        .values_list("message_id", flat=True)
    )
    root, latest = ids.first(), ids.last()
    if root is None or latest is None:  # both or neither: the same rows
        return "", []
    return latest, list(dict.fromkeys([root, latest]))


def recipient_prefetches() -> list[Prefetch]:
    """Prefetches that bring each recipient's delivery rows (newest first)."""
    return [
        Prefetch(
            "deliveries",
            queryset=OutgoingRecipient.objects.order_by("-id"),
            to_attr="delivery_rows",
        )
    ]


def delivery_stamp_columns(*, content_type_id: int, object_id: int) -> dict:
    """Subqueries that change whenever a delivery state of the record's mail does:
    the count of its mail's recipients and their latest change (for
    ``feed.selectors.feed_stamp``, which reads them in its one query)."""
    rows = (
        OutgoingRecipient.objects.filter(
            mail__content_type_id=content_type_id, mail__object_id=object_id
        )
        .order_by()
        .values("mail__content_type_id")
    )
    return {
        "deliveries": Subquery(rows.annotate(n=Count("id")).values("n")),
        "delivered": Subquery(rows.annotate(last=Max("updated_at")).values("last")),
    }
