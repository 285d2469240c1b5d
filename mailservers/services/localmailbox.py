"""The local mailbox closes the loop: caught mail to our domain is routed, and a caught
mail can be answered as its recipient.

Owns the ``routing_*`` fields of ``CaughtMail``. Invariant: the ``CaughtMail`` row is
stored before routing starts and routing never deletes it, so a routing failure never
loses the caught mail (routing quarantines bad mail itself; anything it raises is
logged and kept on the row). Replies are built by ``mime.build_message`` like every
mail Knowlix writes (headers safe by construction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses

from django.core.files.uploadedfile import UploadedFile

from knowlix import params
from knowlix.records import get_record_by_label
from mailservers.mime import (
    MESSAGE_ID,
    InvalidAddress,
    MailPart,
    build_message,
    clean_header,
    make_message_id,
    parse_address,
)
from mailservers.models import CaughtMail
from routing import services as routing_services
from routing.models import InboundMail

logger = logging.getLogger(__name__)
CATCHER_SOURCE = "mailcatcher"
REPLY_SOURCE = "localmailbox"
ERROR = "error"  # routing raised: the outcome stored on the row
MAX_REFERENCES = 32


class NoReplyAddress(ValueError):
    """The caught mail has no recipient to answer as, or no sender to answer to."""

    user_message = "This mail has no recipient or no sender address to reply with."


@dataclass
class LandedRoute:
    """Where a routed message landed, for a link on the page."""

    action: str
    label: str
    url: str


@dataclass
class ReplyOutcome:
    outcome: str
    reason: str = ""
    routes: list[LandedRoute] = field(default_factory=list)
    inbound_id: int | None = None


def _headers(raw: bytes) -> EmailMessage:
    return BytesHeaderParser(policy=default_policy).parsebytes(raw)


def _addresses(headers: EmailMessage, *names: str) -> list[tuple[str, str]]:
    """(name, address) pairs of these headers; a malformed header counts as none."""
    values = []
    for name in names:
        for value in headers.get_all(name) or ():
            try:
                values.append(clean_header(str(value)))
            except (ValueError, IndexError):
                continue
    return [(n, a) for n, a in getaddresses(values) if "@" in a]


def is_for_catchall(*, rcpt_tos: list[str], raw: bytes) -> bool:
    """True if an envelope recipient or a To/Cc address is at the catch-all domain."""
    domain = "@" + params.catchall_domain()
    headers = [a for _, a in _addresses(_headers(raw), "To", "Cc")]
    return any(a.strip().lower().endswith(domain) for a in [*rcpt_tos, *headers])


def route_caught_mail(*, caught: CaughtMail) -> None:
    """Route a stored caught mail addressed to our domain; record what happened.

    Mail to outside addresses is only caught. Never raises: a routing exception is
    logged and stored on the row, which keeps the mail.
    """
    raw = bytes(caught.raw)
    if not is_for_catchall(rcpt_tos=list(caught.rcpt_tos), raw=raw):
        return
    try:
        [result] = routing_services.route_incoming_messages(
            raws=[raw], source=CATCHER_SOURCE
        )
    except Exception as exc:  # noqa: BLE001 - any failure must leave the mail caught
        logger.exception("routing caught mail %s failed", caught.pk)
        caught.routing_outcome = ERROR
        caught.routing_error = f"{type(exc).__name__}: {exc}"[:2000]
        caught.routing_routes = []
    else:
        caught.routing_outcome = str(result.outcome)
        caught.routing_error = "" if result.outcome == "routed" else result.reason
        caught.routing_routes = [route.as_dict() for route in result.routes]
    caught.save(update_fields=["routing_outcome", "routing_error", "routing_routes"])


def landed_routes(routes: list[dict]) -> list[LandedRoute]:
    """Routes (``{"action", "record", "message"}``) with a link to each record."""
    landed = []
    for route in routes:
        record = get_record_by_label(str(route.get("record", "")))
        if record is None:
            continue
        url = f"{record.get_absolute_url()}#message-{route.get('message')}"
        label = f"{record.record_tag} {record}"
        landed.append(LandedRoute(str(route.get("action", "")), label, url))
    return landed


def reply_identity(caught: CaughtMail) -> Address | None:
    """The caught mail's first recipient (To, else the envelope): who replies."""
    candidates = [
        *_addresses(_headers(bytes(caught.raw)), "To"),
        *(("", a) for a in caught.rcpt_tos),
    ]
    for name, address in candidates:
        try:
            return parse_address((name, address))
        except InvalidAddress:
            continue
    return None


def build_reply(
    *, caught: CaughtMail, body: str, attachment: UploadedFile | None = None
) -> bytes:
    """An RFC 5322 reply to ``caught`` from its first recipient (CRLF bytes).

    To: its Reply-To, else its From; "Re: " subject; In-Reply-To and References
    chained; a new Message-ID at the replying address's domain.
    """
    headers = _headers(bytes(caught.raw))
    sender = reply_identity(caught)
    to = _addresses(headers, "Reply-To") or _addresses(headers, "From")
    if not to and caught.mail_from:
        to = [("", caught.mail_from)]
    try:
        recipients = [parse_address(pair) for pair in to]
    except InvalidAddress as exc:
        raise NoReplyAddress(str(exc)) from exc
    if sender is None or not recipients:
        raise NoReplyAddress("no recipient or sender")

    subject = clean_header(str(headers.get("Subject", "") or caught.subject))
    references: list[str] = []
    parent_id = clean_header(caught.message_id)
    if parent_id:
        chain = clean_header(str(headers.get("References", ""))).split()
        references = [*chain[-(MAX_REFERENCES - 1) :], parent_id]
    parts = []
    if attachment is not None:
        parts.append(
            MailPart(
                filename=attachment.name or "attachment",
                content=attachment.read(),
                mimetype=attachment.content_type or "application/octet-stream",
            )
        )
    try:
        return build_message(
            from_addr=(sender.display_name, sender.addr_spec),
            to=[(r.display_name, r.addr_spec) for r in recipients],
            subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
            text=body.replace("\r\n", "\n"),
            message_id=make_message_id(sender.domain),
            in_reply_to=parent_id if MESSAGE_ID.match(parent_id) else "",
            references=[r for r in references if MESSAGE_ID.match(r)],
            attachments=parts,
        )
    except ValueError as exc:  # InvalidAddress included
        raise NoReplyAddress(str(exc)) from exc


def reply_to_caught_mail(
    *, caught: CaughtMail, body: str, attachment: UploadedFile | None = None
) -> ReplyOutcome:
    """Reply to ``caught`` as its recipient through the routing pipeline."""
    raw = build_reply(caught=caught, body=body, attachment=attachment)
    [result] = routing_services.route_incoming_messages(raws=[raw], source=REPLY_SOURCE)
    return ReplyOutcome(
        outcome=str(result.outcome),
        reason=result.reason,
        routes=landed_routes([route.as_dict() for route in result.routes]),
        inbound_id=result.inbound_id,
    )


def get_reply_outcome(inbound_id: int) -> ReplyOutcome | None:
    """What routing made of a reply sent from the Local mailbox (shown after it)."""
    inbound = InboundMail.objects.filter(pk=inbound_id, source=REPLY_SOURCE).first()
    if inbound is None:
        return None
    return ReplyOutcome(
        outcome=inbound.outcome,
        reason=inbound.reason,
        routes=landed_routes(inbound.routes),
        inbound_id=inbound.pk,
    )
