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
    queue_mail_copies(..., copies: Sequence[MailCopy], ...) -> QueuedCopies
        # the same content as one mail per copy (its own To/Cc and Message-ID)
    mark_recipient_bounced(*, message_id: str, address: str, reason: str)
        -> OutgoingRecipient | None
    mark_verp_bounced(*, token: str, reason: str) -> OutgoingRecipient | None

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

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from celery import signature
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dnscheck.signing import dkim_sign, find_signing_domain
from knowlix import params
from knowlix.bulk import insert_rows
from knowlix.html import html_to_text
from mailservers import headers, mime
from mailservers.addresses import InvalidAddress, SmtpAddress, smtp_address
from mailservers.backends.smtp import ConnectionCheck, SmtpParams, test_connection
from mailservers.errors import DeliveryError, MailServerError, MailTooLargeError
from mailservers.models import OutgoingMail, OutgoingRecipient, OutgoingServer
from mailservers.personalize import CopyLines, Personalizer
from mailservers.selection import select_server
from mailservers.services import outbox_health
from mailservers.services.outbox import (  # noqa: F401  (the public door)
    open_connection,
    process_outbox,
    recover_stuck_mail,
    send_mail_item,
    smtp_params_for,
)
from mailservers.services.reselect import reselect_servers

Recipient = OutgoingRecipient
# Sends one queued mail right away; the beat's ``process_outbox`` is the fallback.
SEND_MAIL_TASK = "mailservers.tasks.send_mail"
# A fan-out inserts its mails this many at a time (their bytes are not kept after).
INSERT_CHUNK = 500
# Drains the queue: after queueing many mails at once, one task instead of one each.
PROCESS_OUTBOX_TASK = "mailservers.tasks.process_outbox"


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


def start_draining() -> None:
    """Ask a worker to drain the queue now (many mails were just queued)."""
    signature(PROCESS_OUTBOX_TASK).delay()


def _valid_msgids(values: Sequence[str]) -> list[str]:
    """Keep only well-formed ids: a malformed foreign Message-ID must not block mail."""
    return [v for v in values if v and mime.MESSAGE_ID.match(mime.clean_header(v))]


@dataclass(frozen=True)
class MailCopy:
    """One mail of a fan-out: its own recipients (To/Cc headers, envelope) and its
    own Message-ID (empty: a fresh one)."""

    recipients: Sequence[MailRecipient]
    message_id: str = ""
    # This copy's own header fields and body values (a mailing's unsubscribe
    # link), added to the spliced bytes by ``mailservers.personalize``.
    lines: CopyLines | None = None


@dataclass
class QueuedCopies:
    """What :func:`queue_mail_copies` did: the mails queued, and each address it
    refused before queueing (with the reason), which fails alone."""

    mail_ids: list[int] = field(default_factory=list)
    # The mails as rows, bytes included: only when at most INSERT_CHUNK were queued
    # (a larger fan-out's would not fit in memory).
    mails: list[OutgoingMail] = field(default_factory=list)
    refused: list[tuple[MailRecipient, str]] = field(default_factory=list)


def copy_message_id(base: str, index: int) -> str:
    """The Message-ID of the ``index``-th copy of a mail whose id is ``base``: the
    first copy keeps it, the others add ``.<index>`` to its left part, so every
    copy threads (routing matches each outgoing mail's own id)."""
    if index == 0:
        return base
    left, at, right = base.strip("<>").rpartition("@")
    return f"<{left}.{index}@{right}>" if at else base


def _checked_recipients(
    recipients: Sequence[MailRecipient],
) -> tuple[list[tuple[MailRecipient, SmtpAddress]], list[tuple[MailRecipient, str]]]:
    """(recipients with their SMTP form, refused ones with the reason)."""
    good: list[tuple[MailRecipient, SmtpAddress]] = []
    bad: list[tuple[MailRecipient, str]] = []
    for r in recipients:
        try:
            good.append((r, smtp_address(r.address)))
        except InvalidAddress as exc:
            bad.append((r, exc.user_message))
    return good, bad


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
    """Build the mail once and queue it (see the module docstring); one mail to
    all ``recipients``. Raises ``DeliveryError`` if any address is unusable."""
    if not recipients:
        raise DeliveryError(_("This mail has no recipient."), permanent=True)
    _good, bad = _checked_recipients(recipients)
    if bad:
        raise DeliveryError(bad[0][1], permanent=True)
    queued = queue_mail_copies(
        from_address=from_address,
        from_name=from_name,
        copies=[MailCopy(recipients=recipients, message_id=message_id)],
        subject=subject,
        body_html=body_html,
        body_text=body_text,
        record=record,
        feed_message_id=feed_message_id,
        attachments=attachments,
        in_reply_to=in_reply_to,
        references=references,
        reply_to=reply_to,
        auto_submitted=auto_submitted,
        headers=headers,
        send_now=send_now,
    )
    return queued.mails[0]


def queue_mail_copies(
    *,
    from_address: str,
    from_name: str = "",
    copies: Sequence[MailCopy],
    subject: str,
    body_html: str = "",
    body_text: str = "",
    record: models.Model | None = None,
    feed_message_id: int | None = None,
    attachments: Sequence[mime.MailPart] = (),
    in_reply_to: str = "",
    references: Sequence[str] = (),
    reply_to: str = "",
    auto_submitted: bool = False,
    headers: Mapping[str, str] | None = None,
    send_now: bool = True,
) -> QueuedCopies:
    """Queue the same content as several mails, each to its own recipients.

    The server, From, Reply-To and thread headers are chosen once; each copy gets
    its own To/Cc, Message-ID (:func:`copy_message_id` of the copy's id, or of one
    fresh id) and bytes. An unusable address fails alone (``refused``); a mail
    too large raises ``MailTooLargeError``, a bad From ``DeliveryError``. Rows are
    inserted in bulk, ``INSERT_CHUNK`` mails at a time, without model instances
    (``knowlix.bulk``; a larger fan-out's mails come back as ``mail_ids`` only);
    each recipient gets its VERP token.
    With ``send_now`` the queue is drained once the transaction commits. Call
    inside a transaction for all-or-nothing (``feed.delivery`` does).
    """
    text = body_text or (html_to_text(body_html) if body_html else "")
    check_mail_size(
        mime.estimated_size(text=text, html=body_html, attachments=attachments)
    )
    try:
        sender = mime.parse_address((from_name, from_address))
    except mime.InvalidAddress as exc:
        raise DeliveryError(str(exc), permanent=True) from exc

    selection = select_server(from_address=sender.addr_spec)
    if not reply_to and record is not None:
        reply_to = record_reply_address(record)
    if not reply_to and selection.is_rewritten:
        original = mime.make_address(sender.display_name, selection.original_from)
        reply_to = str(original)
    family = mime.make_message_id(params.catchall_domain())
    in_reply_to = (_valid_msgids([in_reply_to]) or [""])[0]
    signing_domain = selection.from_address.rpartition("@")[2]

    queued = QueuedCopies()
    # A copy to one To address is the built template with its own To and
    # Message-ID lines (a 100,000-copy fan-out builds the MIME once).
    template = _CopyTemplate(
        lambda to, message_id, cc=(), utf8=False: mime.build_message(
            from_addr=(sender.display_name, selection.from_address),
            to=to,
            cc=cc,
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
            utf8=utf8,
        )
    )
    # What every copy's row shares, written once per statement (knowlix.bulk).
    shared = {
        "feed_message_id": feed_message_id,
        "content_type": ContentType.objects.get_for_model(record) if record else None,
        "object_id": record.pk if record else None,
        "server": selection.server,
        "server_label": str(selection.server or _("Default server")),
        "selection_reason": selection.reason[:200],
        "from_address": selection.from_address,
        "from_name": sender.display_name,
        "original_from": selection.original_from,
        "reply_to": str(reply_to)[:1000],
        "subject": mime.clean_header(subject)[:998],
    }
    # Integration point with dnscheck: signs when the From domain is DKIM-verified
    # (each copy: its To is signed), unchanged otherwise (never raises).
    signs = find_signing_domain(signing_domain) is not None
    personalizer = Personalizer()
    keep = len(copies) <= INSERT_CHUNK  # small calls get their mails back in full
    built: list[_Built] = []
    for index, copy in enumerate(copies):
        good, bad = _checked_recipients(copy.recipients)
        queued.refused += bad
        if not good:
            continue
        message_id = copy.message_id or copy_message_id(family, index)
        utf8 = any(a.needs_smtputf8 for r, a in good if r.kind != Recipient.Kind.BCC)
        raw = template.render(good, message_id=message_id, utf8=utf8)
        raw = personalizer.apply(raw, copy.lines)
        if signs:
            raw = dkim_sign(raw, signing_domain)
        check_mail_size(len(raw))
        built.append(_Built(message_id, raw, utf8, good))
        if not keep and len(built) >= INSERT_CHUNK:  # memory stays flat
            queued.mail_ids += _insert(built, shared)
            built = []

    with transaction.atomic():
        if built:
            queued.mail_ids += _insert(built, shared)
        if keep:
            queued.mails = _as_mails(queued.mail_ids, built, shared)
        mail_ids = queued.mail_ids
        if send_now and len(mail_ids) == 1:
            transaction.on_commit(partial(start_sending, mail_ids[0]))
        elif send_now and mail_ids:  # one drain for the lot, not a task per copy
            transaction.on_commit(start_draining)
    return queued


@dataclass(frozen=True)
class _Built:
    """A copy's own values, until its row is inserted."""

    message_id: str
    raw: bytes
    utf8: bool
    good: list[tuple[MailRecipient, SmtpAddress]]


_MAIL_COLUMNS = ("message_id", "raw", "size", "needs_smtputf8")
_RECIPIENT_COLUMNS = (
    "mail_id",
    "address",
    "name",
    "kind",
    "message_recipient_id",
    "verp_token",
)


def _insert(built: list[_Built], shared: Mapping[str, object]) -> list[int]:
    """Insert built mails (``shared`` values in each) and their recipients, each
    with its VERP token, in one statement per table; the mails' ids."""
    with transaction.atomic():
        ids = insert_rows(
            OutgoingMail,
            columns=_MAIL_COLUMNS,
            rows=((b.message_id, b.raw, len(b.raw), b.utf8) for b in built),
            constants=shared,
            returning=True,
        )
        tokens = iter(new_verp_tokens(sum(len(b.good) for b in built)))
        insert_rows(
            OutgoingRecipient,
            columns=_RECIPIENT_COLUMNS,
            rows=(
                (
                    mail_id,
                    smtp.addr_spec,
                    r.name[:200],
                    r.kind,
                    r.message_recipient_id,
                    next(tokens),
                )
                for mail_id, b in zip(ids, built, strict=True)
                for r, smtp in b.good
            ),
        )
    return ids


def _as_mails(
    ids: list[int], built: list[_Built], shared: Mapping[str, object]
) -> list[OutgoingMail]:
    """The inserted rows as model instances (a small call's return value)."""
    mails = [
        OutgoingMail(
            pk=pk,
            message_id=b.message_id,
            raw=b.raw,
            size=len(b.raw),
            needs_smtputf8=b.utf8,
            **shared,
        )
        for pk, b in zip(ids, built, strict=True)
    ]
    for mail in mails:  # as bulk_create leaves them: saved rows
        mail._state.adding, mail._state.db = False, "default"
    return mails


class _CopyTemplate:
    """The bytes of each copy: built in full for a copy with several recipients or
    UTF-8 headers; for one To address, spliced into a template built once (its To,
    Message-ID and X-Knowlix-Message-Id lines replaced in the header block only;
    the new To line is written by ``mailservers.headers``, as in a full build)."""

    PLACEHOLDER_TO = "knowlix-copy@placeholder.invalid"
    PLACEHOLDER_ID = "<knowlix-copy@placeholder.invalid>"

    def __init__(self, build: Callable[..., bytes]) -> None:
        self.build = build
        self.head = b""
        self.body = b""

    def render(
        self,
        good: list[tuple[MailRecipient, SmtpAddress]],
        *,
        message_id: str,
        utf8: bool,
    ) -> bytes:
        def header_list(kind: str) -> list[tuple[str, str]]:
            return [(r.name, a.addr_spec) for r, a in good if r.kind == kind]

        to = header_list(OutgoingRecipient.Kind.TO)
        if utf8 or len(good) != 1 or len(to) != 1 or not message_id.isascii():
            cc = header_list(OutgoingRecipient.Kind.CC)
            return self.build(to, message_id, cc, utf8)
        message_id = headers.check_message_id(message_id)
        if not self.head:
            raw = self.build([("", self.PLACEHOLDER_TO)], self.PLACEHOLDER_ID)
            self.head, _sep, self.body = raw.partition(b"\r\n\r\n")
        line = headers.HeaderBlock()  # as build_message writes it
        line.mailboxes("To", [headers.make_mailbox(*to[0])])
        to_line = line.as_bytes().rstrip(b"\r\n")
        head = self.head.replace(f"To: {self.PLACEHOLDER_TO}".encode(), to_line, 1)
        head = head.replace(self.PLACEHOLDER_ID.encode(), message_id.encode())
        return head + b"\r\n\r\n" + self.body


def new_verp_token() -> str:
    """A recipient's VERP token: 80 random bits, lower-case (MTAs may lower-case
    the address a bounce is delivered to)."""
    return secrets.token_hex(10)


def new_verp_tokens(count: int) -> list[str]:
    """``count`` VERP tokens as :func:`new_verp_token` makes them, from one read
    of the system's random source."""
    pool = secrets.token_bytes(10 * count).hex()
    return [pool[n : n + 20] for n in range(0, 20 * count, 20)]


# --- Acting on queued mail (the Email queue page, routing) -------------------------


@transaction.atomic
def retry_mail(*, mail_id: int) -> bool:
    """Queue a failed, deferred or cancelled mail again, due now (see
    ``reselect.retry_mail_now`` for *Retry*: an attempt at once); its queue
    lifetime starts over."""
    retryable = [
        OutgoingMail.State.FAILED,
        OutgoingMail.State.DEFERRED,
        OutgoingMail.State.CANCELLED,
    ]
    # The attempts are kept: the retry is one more, counted by its claim.
    won = OutgoingMail.objects.filter(pk=mail_id, state__in=retryable).update(
        state=OutgoingMail.State.QUEUED,
        next_attempt_at=timezone.now(),
        created_at=timezone.now(),
        uncertain=False,
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
    return _mark_bounced(recipient, reason)


@transaction.atomic
def mark_verp_bounced(*, token: str, reason: str) -> OutgoingRecipient | None:
    """Record a bounce that came back to ``bounce+<token>@``: exactly the
    recipient whose transaction had that envelope sender. None if unknown."""
    token = token.strip().lower()
    if not token:
        return None
    recipient = (
        OutgoingRecipient.objects.select_for_update().filter(verp_token=token).first()
    )
    return _mark_bounced(recipient, reason)


def _mark_bounced(
    recipient: OutgoingRecipient | None, reason: str
) -> OutgoingRecipient | None:
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


@dataclass(frozen=True)
class RetryOutcome:
    ok: bool
    message: str


def retry_mail_now(*, mail_id: int) -> RetryOutcome:
    """*Retry*: one attempt now, through the server chosen afresh, counted like
    any other; the outcome says what happened."""
    if not retry_mail(mail_id=mail_id):
        return RetryOutcome(
            False, _("Only failed, deferred or cancelled mail can be retried.")
        )
    reselect_servers(mail_ids=[mail_id])
    send_mail_item(mail_id=mail_id)
    mail = OutgoingMail.objects.defer("raw").get(pk=mail_id)
    where = mail.server_label or _("Default server")
    values = {"n": mail.attempts, "server": where, "reason": mail.last_error}
    if mail.state == OutgoingMail.State.SENT:
        return RetryOutcome(True, _("Attempt %(n)s through %(server)s: sent.") % values)
    if mail.state == OutgoingMail.State.QUEUED:
        return RetryOutcome(
            True,
            _(
                "Queued again for %(server)s, which cannot send right now (paused "
                "or at its sending limit): it leaves as soon as it can."
            )
            % values,
        )
    if mail.state == OutgoingMail.State.DEFERRED and outbox_health.is_down(
        mail.server_id
    ):
        return RetryOutcome(False, mail.last_error)  # the server's, not an attempt
    if mail.state == OutgoingMail.State.DEFERRED:
        return RetryOutcome(
            False,
            _("Attempt %(n)s through %(server)s: deferred, retried later: %(reason)s")
            % values,
        )
    return RetryOutcome(
        False, _("Attempt %(n)s through %(server)s: failed: %(reason)s") % values
    )


# --- Servers -------------------------------------------------------------------------


def check_server_connection(*, server: OutgoingServer | None) -> ConnectionCheck:
    """*Test connection*: connect, TLS, log in; the outcome is stored on the server."""
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
