"""Queue outgoing mail, and act on queued mail (retry, cancel, bounce).

Public API (keep stable; ``feed.delivery`` calls it)::

    queue_mail(
        *, from_address: str, from_name: str = "",
        recipients: Sequence[MailRecipient],      # address, name, kind, message_recipient_id
        subject: str, body_html: str = "", body_text: str = "",
        record: Model | None = None,               # reply+<token>@catch-all, linked
        feed_message_id: int | None = None,
        attachments: Sequence[MailPart] = (),      # content_id set: inline image
        message_id: str = "", in_reply_to: str = "", references: Sequence[str] = (),
        reply_to: str = "", auto_submitted: bool = False,
        headers: Mapping[str, str] | None = None, send_now: bool = True,
    ) -> OutgoingMail
    mark_recipient_bounced(*, message_id: str, address: str, reason: str)
        -> OutgoingRecipient | None

``queue_mail`` builds the bytes once, refuses a mail above ``KNOWLIX_MAIL_MAX_BYTES``
(``MailTooLargeError``) or with a bad address (``DeliveryError(permanent=True)``)
before any row exists, chooses the server (``mailservers.selection``) and records
the choice. With ``send_now`` the Celery task ``mailservers.tasks.send_mail`` (named,
not imported: tasks are a higher layer) sends it once the transaction commits.
Thread headers (In-Reply-To, References) come ready-made from the caller: the feed
knows the thread, the queue does not read it. Sending is
``mailservers.services.outbox`` (re-exported below).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from celery import signature
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dnscheck.signing import dkim_sign
from knowlix import params
from knowlix.html import html_to_text
from mailservers import mime
from mailservers.backends.smtp import ConnectionCheck, SmtpParams, test_connection
from mailservers.errors import DeliveryError, MailServerError, MailTooLargeError
from mailservers.models import OutgoingMail, OutgoingRecipient, OutgoingServer
from mailservers.selection import select_server
from mailservers.services.outbox import (  # noqa: F401  (the public door)
    open_connection,
    process_outbox,
    recover_stuck_mail,
    send_mail_item,
    smtp_params_for,
)

Recipient = OutgoingRecipient
# Sends one queued mail right away; the beat's ``process_outbox`` is the fallback.
SEND_MAIL_TASK = "mailservers.tasks.send_mail"


@dataclass(frozen=True)
class MailRecipient:
    """One envelope recipient; ``kind`` is "to", "cc" or "bcc" (never in headers)."""

    address: str
    name: str = ""
    kind: str = OutgoingRecipient.Kind.TO
    message_recipient_id: int | None = None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_mail_size(size: int) -> None:
    """Raise MailTooLargeError when ``size`` bytes exceed the configured limit."""
    limit = settings.KNOWLIX_MAIL_MAX_BYTES
    if size > limit:
        raise MailTooLargeError(
            _(
                "This mail would be %(size)s with its attachments; the limit is "
                "%(limit)s. Remove or shrink attachments, or share a link instead."
            )
            % {"size": _megabytes(size), "limit": _megabytes(limit)}
        )


def record_reply_address(record: models.Model) -> str:
    """``reply+<token>@<catch-all>``: a reply finds the record even without headers.

    Empty for a model without a reply token (not a business record).
    """
    token = getattr(record, "reply_token", "")
    return f"reply+{token}@{params.catchall_domain()}" if token else ""


def start_sending(mail_id: int) -> None:
    """Ask a worker to send the mail now (by task name: tasks are the layer above)."""
    signature(SEND_MAIL_TASK, args=(mail_id,)).delay()


def _valid_msgids(values: Sequence[str]) -> list[str]:
    """Keep only well-formed ids: a malformed foreign Message-ID must not block mail."""
    return [v for v in values if v and mime.MESSAGE_ID.match(mime.clean_header(v))]


def queue_mail(
    *,
    from_address: str,
    from_name: str = "",
    recipients: Sequence[MailRecipient],
    subject: str,
    body_html: str = "",
    body_text: str = "",
    record: models.Model | None = None,
    feed_message_id: int | None = None,
    attachments: Sequence[mime.MailPart] = (),
    message_id: str = "",
    in_reply_to: str = "",
    references: Sequence[str] = (),
    reply_to: str = "",
    auto_submitted: bool = False,
    headers: Mapping[str, str] | None = None,
    send_now: bool = True,
) -> OutgoingMail:
    """Build the mail once and queue it (see the module docstring)."""
    if not recipients:
        raise DeliveryError(_("This mail has no recipient."), permanent=True)
    text = body_text or (html_to_text(body_html) if body_html else "")
    check_mail_size(
        mime.estimated_size(text=text, html=body_html, attachments=attachments)
    )
    try:
        sender = mime.parse_address((from_name, from_address))
        for r in recipients:
            mime.parse_address((r.name, r.address))
    except mime.InvalidAddress as exc:
        raise DeliveryError(str(exc), permanent=True) from exc

    selection = select_server(from_address=sender.addr_spec)
    if not reply_to and record is not None:
        reply_to = record_reply_address(record)
    if not reply_to and selection.is_rewritten:
        original = mime.make_address(sender.display_name, selection.original_from)
        reply_to = str(original)
    message_id = message_id or mime.make_message_id(params.catchall_domain())
    in_reply_to = (_valid_msgids([in_reply_to]) or [""])[0]

    def header_list(kind: str) -> list[tuple[str, str]]:
        return [(r.name, r.address) for r in recipients if r.kind == kind]

    raw = mime.build_message(
        from_addr=(sender.display_name, selection.from_address),
        to=header_list(OutgoingRecipient.Kind.TO),
        cc=header_list(OutgoingRecipient.Kind.CC),
        reply_to=[reply_to] if reply_to else [],
        subject=subject,
        text=text,
        html=body_html,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=_valid_msgids(references),
        auto_submitted=auto_submitted,
        attachments=attachments,
        extra_headers=headers,
    )
    # Integration point with dnscheck: signs when the From domain is DKIM-verified,
    # returns the bytes unchanged otherwise (never raises).
    raw = dkim_sign(raw, selection.from_address.rpartition("@")[2])
    check_mail_size(len(raw))

    with transaction.atomic():
        mail = OutgoingMail.objects.create(
            feed_message_id=feed_message_id,
            content_type=ContentType.objects.get_for_model(record) if record else None,
            object_id=record.pk if record else None,
            server=selection.server,
            server_label=str(selection.server or _("Default server")),
            selection_reason=selection.reason[:200],
            from_address=selection.from_address,
            from_name=sender.display_name,
            original_from=selection.original_from,
            reply_to=str(reply_to)[:1000],
            subject=mime.clean_header(subject)[:998],
            message_id=message_id,
            raw=raw,
            size=len(raw),
        )
        OutgoingRecipient.objects.bulk_create(
            OutgoingRecipient(
                mail=mail,
                address=r.address.strip(),
                name=r.name[:200],
                kind=r.kind,
                message_recipient_id=r.message_recipient_id,
            )
            for r in recipients
        )
        if send_now:
            transaction.on_commit(partial(start_sending, mail.pk))
    return mail


# --- Acting on queued mail (the Email queue page, routing) -------------------------


@transaction.atomic
def retry_mail(*, mail_id: int) -> bool:
    """Queue a failed, deferred or cancelled mail again, now, with a fresh budget."""
    retryable = [
        OutgoingMail.State.FAILED,
        OutgoingMail.State.DEFERRED,
        OutgoingMail.State.CANCELLED,
    ]
    won = OutgoingMail.objects.filter(pk=mail_id, state__in=retryable).update(
        state=OutgoingMail.State.QUEUED, attempts=0, next_attempt_at=timezone.now()
    )
    if won:
        OutgoingRecipient.objects.filter(
            mail_id=mail_id,
            state__in=[
                Recipient.State.FAILED,
                Recipient.State.DEFERRED,
                Recipient.State.CANCELLED,
            ],
        ).update(state=Recipient.State.QUEUED, updated_at=timezone.now())
    return bool(won)


@transaction.atomic
def cancel_mail(*, mail_id: int) -> bool:
    """Cancel a mail that is not being sent right now; False if too late."""
    won = OutgoingMail.objects.filter(
        pk=mail_id, state__in=OutgoingMail.PENDING
    ).update(state=OutgoingMail.State.CANCELLED)
    if won:
        OutgoingRecipient.objects.filter(
            mail_id=mail_id, state__in=Recipient.PENDING
        ).update(state=Recipient.State.CANCELLED, updated_at=timezone.now())
    return bool(won)


@transaction.atomic
def mark_recipient_bounced(
    *, message_id: str, address: str, reason: str
) -> OutgoingRecipient | None:
    """Record a bounce (DSN) for ``address`` of the mail with ``message_id``.

    Returns the recipient, or None when the mail or the address is not ours.
    """
    recipient = (
        OutgoingRecipient.objects.select_for_update()
        .filter(mail__message_id=message_id.strip(), address__iexact=address.strip())
        .first()
    )
    if recipient is None:
        return None
    recipient.state = Recipient.State.BOUNCED
    recipient.last_error = reason[:2000]
    recipient.updated_at = timezone.now()
    recipient.save(update_fields=["state", "last_error", "updated_at"])
    OutgoingMail.objects.filter(pk=recipient.mail_id).update(
        last_error=_("%(address)s bounced: %(reason)s")
        % {"address": recipient.address, "reason": reason[:1900]},
        last_error_at=timezone.now(),
    )
    return recipient


# --- Servers -------------------------------------------------------------------------


def check_server_connection(*, server: OutgoingServer | None) -> ConnectionCheck:
    """*Test Connection*: connect, TLS, log in; the outcome is stored on the server."""
    try:
        check = test_connection(
            smtp_params_for(server), opener=lambda conn: open_connection(conn, server)
        )
    except MailServerError as exc:  # no default URL, no connected OAuth account
        check = ConnectionCheck(False, exc.user_message)
    if server is not None:
        now = timezone.now()
        if check.ok:
            server.last_success_at, server.needs_attention = now, False
            server.paused_until = None
            fields = ["last_success_at", "needs_attention", "paused_until"]
        else:
            server.last_error, server.last_error_at = check.message, now
            fields = ["last_error", "last_error_at"]
        server.save(update_fields=fields)
    return check


def describe_default_server() -> str:
    """``smtps://host:465`` for KNOWLIX_SMTP_URL, without the credentials."""
    try:
        p = SmtpParams.from_url(settings.KNOWLIX_SMTP_URL)
    except MailServerError as exc:
        return exc.user_message
    scheme = {"none": "smtp", "ssl": "smtps", "starttls": "smtp+starttls"}[p.security]
    login = " (with login)" if p.username else ""
    return f"{scheme}://{p.host}:{p.port}{login}"
