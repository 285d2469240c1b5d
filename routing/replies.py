"""Automatic answers of the routing pipeline: polite bounces for refused mail.

Sent from ``MAILER-DAEMON <mail.bounce.alias@domain>`` with ``Auto-Submitted:
auto-replied``. No backscatter: never to a null Return-Path, machine, list or bulk
mail, never to a sender whose SPF, DKIM or DMARC failed (the address is likely
forged), and at most ``mail.gateway.refusals_per_hour`` (3) answers per mailbox
(an address in any case or +tag) and hour; every refusal not answered says why on
its ``InboundMail``. Mail leaves through the outgoing queue only (``mailservers.services.outgoing.queue_mail``),
inside routing's transaction, so a rolled-back routing never answers anyone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from knowlix import params
from mailservers.errors import MailServerError
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import MailRecipient, queue_mail
from routing.authenticity import Verdict
from routing.models import InboundMail
from routing.parsing import ParsedMessage
from routing.reports import DAEMON_LOCALPARTS

REFUSAL_ID_PREFIX = "knowlix-refusal"  # every answer's Message-ID starts so
DEFAULT_REFUSAL = _lazy(
    "The address you wrote to does not accept messages. Please check the address, "
    "or reply to a message you received from us."
)
LOOP_REFUSAL = _lazy(
    "We received too many messages from your address in a short time, so this one "
    "was not accepted. If an automatic responder is answering our mail, please "
    "switch it off for our addresses."
)


def answer_address(parsed: ParsedMessage) -> str:
    """Where an answer would go: the Return-Path, else From ("" for a null one)."""
    if parsed.return_path is not None:
        return parsed.return_path
    return parsed.from_address


def why_not_answer(parsed: ParsedMessage, verdict: Verdict | None = None) -> str:
    """Why the sender of ``parsed`` must not be answered, or "" if it may be."""
    address = answer_address(parsed)
    if not address:
        return _("no sender address (null Return-Path)")
    if parsed.is_auto_submitted:
        return _("automatic, list or bulk mail (%(why)s)") % {
            "why": parsed.auto_submitted
        }
    if parsed.bounce.detected or address.split("@")[0] in DAEMON_LOCALPARTS:
        return _("mail from a mail system")
    if verdict is not None and verdict.some_failed:
        return _("the sender's authentication failed (%(result)s)") % {
            "result": verdict.some_failed
        }
    return ""


def mailbox_of(address: str) -> tuple[str, str]:
    """(local part without its +tag, domain without a final dot), lower case: the
    one mailbox that ``Victim+1@Innocent.example.`` and its variants reach."""
    local, _at, domain = address.lower().rpartition("@")
    return local.split("+", 1)[0], domain.rstrip(".")


def refusals_sent(address: str) -> int:
    """Automatic answers queued to ``address``'s mailbox (any case, +tag or final
    dot: :func:`mailbox_of`) in the last hour.

    Call inside routing's transaction: on PostgreSQL it takes a transaction lock
    per mailbox, so that two workers cannot both count 2 and send the 4th answer
    (SQLite's write transactions are serialized already)."""
    local, domain = mailbox_of(address)
    if connection.vendor == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(f"{local}@{domain}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    since = timezone.now() - dt.timedelta(hours=1)
    return OutgoingRecipient.objects.filter(
        address__iregex=rf"^{re.escape(local)}(\+[^@]*)?@{re.escape(domain)}\.?$",
        mail__created_at__gte=since,
        mail__message_id__startswith=f"<{REFUSAL_ID_PREFIX}.",
    ).count()


def send_refusal(
    *,
    inbound: InboundMail,
    parsed: ParsedMessage,
    reason: str,
    loop_tag: str = "",
    verdict: Verdict | None = None,
) -> tuple[bool, str]:
    """Queue a polite bounce to the sender: (queued, why it was not queued)."""
    why_not = why_not_answer(parsed, verdict)
    if why_not:
        return False, why_not
    to = answer_address(parsed)
    limit = params.get_int_param(params.REFUSALS_PER_HOUR)
    if refusals_sent(to) >= limit:
        return False, _("%(count)s automatic answers to this address this hour") % {
            "count": limit
        }
    domain = params.catchall_domain()
    context = {
        "subject": parsed.subject,
        "recipients": ", ".join(parsed.recipients[:5]),
        "reason": reason,
        "loop_tag": loop_tag,
    }
    subject = render_to_string("emails/routing_refused/subject.txt", context).strip()
    body_text = render_to_string("emails/routing_refused/body.txt", context)
    body_html = render_to_string("emails/routing_refused/body.html", context)
    prefix = f"{REFUSAL_ID_PREFIX}.{loop_tag}" if loop_tag else REFUSAL_ID_PREFIX
    headers = {"X-Knowlix-Loop": loop_tag} if loop_tag else {}
    try:
        queue_mail(
            from_address=params.bounce_address(),
            from_name="MAILER-DAEMON",
            recipients=[MailRecipient(address=to)],
            subject=" ".join(subject.split()),
            body_text=body_text,
            body_html=body_html,
            message_id=f"<{prefix}.{uuid.uuid4().hex}@{domain}>",
            in_reply_to=parsed.message_id,
            references=[*parsed.references[-10:], parsed.message_id],
            auto_submitted=True,
            headers=headers,
        )
    except MailServerError as exc:  # e.g. an unusable sender address
        return False, _("it could not be sent: %(e)s") % {"e": exc.user_message}
    inbound.replied_at = timezone.now()
    return True, ""
