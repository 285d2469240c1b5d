"""Automatic answers of the routing pipeline: polite bounces for refused mail.

Sent from ``MAILER-DAEMON <mail.bounce.alias@domain>`` with ``Auto-Submitted:
auto-replied``, never to machine-generated mail (that is how mail loops start). Mail
leaves through the outgoing queue only (``mailservers.services.outgoing.queue_mail``),
inside routing's transaction, so a rolled-back routing never answers anyone.
"""

from __future__ import annotations

import uuid

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from knowlix import params
from mailservers.errors import MailServerError
from mailservers.services.outgoing import MailRecipient, queue_mail
from routing.models import InboundMail
from routing.parsing import ParsedMessage
from routing.reports import DAEMON_LOCALPARTS

DEFAULT_REFUSAL = _(
    "The address you wrote to does not accept messages. Please check the address, "
    "or reply to a message you received from us."
)
LOOP_REFUSAL = _(
    "We received too many messages from your address in a short time, so this one "
    "was not accepted. If an automatic responder is answering our mail, please "
    "switch it off for our addresses."
)


def may_answer(parsed: ParsedMessage) -> bool:
    """Never answer machines: auto-submitted mail, bounces, daemons, no sender."""
    address = parsed.return_path or parsed.from_address
    if not address or parsed.is_auto_submitted or parsed.bounce.detected:
        return False
    return address.split("@")[0] not in DAEMON_LOCALPARTS


def send_refusal(
    *, inbound: InboundMail, parsed: ParsedMessage, reason: str, loop_tag: str = ""
) -> tuple[bool, str]:
    """Queue a polite bounce to the sender: (queued, why it could not be queued).

    Not queued, with no error, when the sender must not be answered (a machine).
    """
    if not may_answer(parsed):
        return False, ""
    to = parsed.return_path or parsed.from_address
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
    prefix = loop_tag or "knowlix-refusal"
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
        return False, exc.user_message
    inbound.replied_at = timezone.now()
    return True, ""
