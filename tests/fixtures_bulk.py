"""Bulk-made feed rows for the benchmark and the query-count tests (not for the app).

Writes rows directly (no notifications, no mail) so that 10,000 messages with
authors, attachments, recipients and delivery states take seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from feed.models import Attachment, Blob, Message, MessageRecipient
from knowlix.models import Contact, normalize_email
from mailservers.models import OutgoingMail, OutgoingRecipient


def _blob(content: bytes) -> Blob:
    digest = hashlib.sha256(content).hexdigest()
    blob = Blob.objects.filter(sha256=digest).first()
    if blob is None:
        blob = Blob(sha256=digest, size=len(content))
        blob.file.save(digest, ContentFile(content), save=False)
        blob.save()
    return blob


@transaction.atomic
def make_messages(*, record: Model, author: User, contact: Contact, count: int) -> None:
    """``count`` emails and notes on ``record``: every 3rd has a file, every email a
    recipient whose mail was sent (so the feed shows a delivery state)."""
    ct = ContentType.objects.get_for_model(record)
    run = uuid.uuid4().hex[:12]
    blob = _blob(b"%PDF-1.4 bench file")
    start = timezone.now() - dt.timedelta(minutes=count)
    batch = 2000
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        messages = Message.objects.bulk_create(
            Message(
                content_type=ct,
                object_id=record.pk,
                kind=Message.Kind.EMAIL if i % 2 else Message.Kind.NOTE,
                direction=(
                    Message.Direction.OUTGOING if i % 2 else Message.Direction.INTERNAL
                ),
                is_internal=not i % 2,
                author_user=author if i % 4 != 1 else None,
                author_contact=contact if i % 4 == 1 else None,
                subject=f"Message {i}",
                body_html=f"<p>Body of message <b>{i}</b></p>",
                body_text=f"Body of message {i}",
                message_id=f"<bench.{run}.{i}@bench.example>",
                created_at=start + dt.timedelta(minutes=i),
            )
            for i in range(offset, offset + n)
        )
        Attachment.objects.bulk_create(
            Attachment(
                message=m, blob=blob, filename="quote.pdf", mimetype="application/pdf"
            )
            for k, m in enumerate(messages)
            if k % 3 == 0
        )
        emails = [m for m in messages if m.kind == Message.Kind.EMAIL]
        recipients = MessageRecipient.objects.bulk_create(
            MessageRecipient(
                message=m, address=contact.email, name=contact.name, contact=contact
            )
            for m in emails
        )
        mails = OutgoingMail.objects.bulk_create(
            OutgoingMail(
                feed_message=m,
                from_address="bench@bench.example",
                message_id=f"<out.{m.message_id[1:]}",
                raw=b"",
                state=OutgoingMail.State.SENT,
            )
            for m in emails
        )
        OutgoingRecipient.objects.bulk_create(
            OutgoingRecipient(
                mail=mail,
                message_recipient=r,
                address=r.address,
                state=OutgoingRecipient.State.SENT,
            )
            for mail, r in zip(mails, recipients, strict=True)
        )
    analyze()


def analyze() -> None:
    """Refresh the planner's statistics after a bulk load (autovacuum would, later)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


class QueryCounter:
    """Counts SQL statements run on a connection (survives the request's reconnects).

    Use as ``with connection.execute_wrapper(counter := QueryCounter()): ...``.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        execute: Callable[[str, Any, bool, dict[str, Any]], object],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> object:
        self.count += 1
        return execute(sql, params, many, context)


def add_contact_followers(*, record: Model, count: int, chunk: int = 5000) -> None:
    """``count`` new contacts following ``record``, subscribed to its default
    contact subtypes (discussion), written in bulk, ``chunk`` rows at a time."""
    from feed.defaults import ensure_default_data
    from feed.models import Follower, Subtype

    ensure_default_data()
    subtype = Subtype.objects.get(code=Subtype.DISCUSSION)
    ct = ContentType.objects.get_for_model(record)
    through = Follower.subtypes.through
    tag = uuid.uuid4().hex[:8]
    for start in range(0, count, chunk):
        numbers = range(start, min(start + chunk, count))
        with transaction.atomic():
            emails = [f"c{n}.{tag}@customers.example" for n in numbers]
            contacts = Contact.objects.bulk_create(
                Contact(name=f"Customer {e[1:].split('.')[0]}", email=e,
                        email_normalized=normalize_email(e))
                for e in emails
            )  # fmt: skip
            followers = Follower.objects.bulk_create(
                Follower(content_type=ct, object_id=record.pk, contact=contact)
                for contact in contacts
            )
            through.objects.bulk_create(
                through(follower_id=f.pk, subtype_id=subtype.pk) for f in followers
            )


def write_bare_recipients(cursor: Any, *, message_id: int, count: int) -> None:
    """The benchmarks' baseline: ``count`` message recipients and as many queued
    outgoing recipients (of one placeholder mail), as plain ``executemany``
    rows, with no rule, MIME or chunking. Call inside the timed transaction."""
    mail = OutgoingMail.objects.create(
        from_address="alice@catchall.test", message_id="<bare@bench>", raw=b"x"
    )
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    cursor.executemany(
        f"INSERT INTO {q(MessageRecipient._meta.db_table)} (message_id, address, "
        "name, delivery_error) VALUES (%s, %s, %s, '')",
        [(message_id, f"bare{n}@x.example", f"Bare {n}") for n in range(count)],
    )
    cursor.executemany(
        f"INSERT INTO {q(OutgoingRecipient._meta.db_table)} (mail_id, address, "
        "name, kind, state, last_error, updated_at, verp_token) "
        "VALUES (%s, %s, %s, 'to', 'queued', '', %s, %s)",
        [
            (mail.pk, f"bare{n}@x.example", f"Bare {n}", now, f"t{n}")
            for n in range(count)
        ],
    )
