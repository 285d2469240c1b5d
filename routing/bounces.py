"""Delivery reports about mail we sent: mark the recipient bounced, count it.

A bounce never creates a record. First the address it came back to: each
recipient's envelope sender is ``bounce+<token>@<catch-all>`` (VERP), which names
the exact mail and recipient even when the report carries no original headers.
Otherwise the failed address comes from the report
(``Final-Recipient``/``X-Failed-Recipients``) and the original message from the
attached headers, else from In-Reply-To/References. The recipient's state on the
original message is the outgoing side's (``mark_verp_bounced``,
``mark_recipient_bounced``).
"""

from __future__ import annotations

from django.db.models import F
from django.utils.translation import gettext as _

from knowlix.models import Contact
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import mark_recipient_bounced, mark_verp_bounced
from routing import matching
from routing.parsing import ParsedMessage


def handle_bounce(parsed: ParsedMessage) -> str:
    """Record the bounce; returns the reason shown in the routing result."""
    info = parsed.bounce
    if info.is_delay:
        return _("A delivery delay report: nothing failed yet.")
    tokens = matching.verp_tokens(parsed)
    if tokens:
        return _handle_verp_bounce(parsed, tokens)
    candidates = [info.original_message_id] if info.original_message_id else []
    candidates += [i for i in parsed.thread_ids if i not in candidates]
    failed = list(info.failed_recipients)
    if not failed and candidates:
        failed = _single_recipient(candidates)
    reason = info.reason or _("The remote server gave no reason.")
    marked: list[str] = []
    for address in failed:
        Contact.objects.filter(email_normalized=address).update(
            bounce_count=F("bounce_count") + 1
        )
        for message_id in candidates:
            if mark_recipient_bounced(
                message_id=message_id, address=address, reason=reason
            ):
                marked.append(address)
                break
    who = ", ".join(failed) or _("an unknown address")
    if not marked:
        return _("Bounce for %(who)s; the original mail was not found: %(reason)s") % {
            "who": who,
            "reason": reason,
        }
    return _("Bounce for %(who)s: %(reason)s") % {"who": who, "reason": reason}


def _handle_verp_bounce(parsed: ParsedMessage, tokens: list[str]) -> str:
    """A mail to ``bounce+<token>@``: only a delivery report marks its recipient
    (an auto-reply to the envelope sender, such as an out-of-office, does not)."""
    info = parsed.bounce
    if not info.detected:
        return _(
            "A message to a bounce address that is not a delivery report (an "
            "auto-reply?): no recipient marked."
        )
    reason = info.reason or _("The remote server gave no reason.")
    marked = [
        recipient
        for token in tokens
        if (recipient := mark_verp_bounced(token=token, reason=reason)) is not None
    ]
    if not marked:
        return _("Bounce to an unknown bounce address; nothing marked: %(reason)s") % {
            "reason": reason
        }
    for recipient in marked:
        Contact.objects.filter(email_normalized=recipient.address.lower()).update(
            bounce_count=F("bounce_count") + 1
        )
    who = ", ".join(r.address for r in marked)
    return _("Bounce for %(who)s: %(reason)s") % {"who": who, "reason": reason}


def _single_recipient(message_ids: list[str]) -> list[str]:
    """Without a failed address, a mail sent to one recipient names it."""
    for message_id in message_ids:
        addresses = list(
            OutgoingRecipient.objects.filter(mail__message_id=message_id).values_list(
                "address", flat=True
            )[:2]
        )
        if addresses:
            return [addresses[0].lower()] if len(addresses) == 1 else []
    return []
