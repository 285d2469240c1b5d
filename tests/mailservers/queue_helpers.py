"""Helpers of the outgoing queue's tests."""

from __future__ import annotations

from knowlix import params
from mailservers.models import OutgoingMail
from mailservers.services.outgoing import MailRecipient, queue_mail


def queue_numbered(count: int, *, subject: str = "Mail") -> list[OutgoingMail]:
    """Queue ``count`` one-recipient mails (not sent now): "<subject> <n>" to r<n>@."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return [
        queue_mail(
            from_address="alice@catchall.test",
            recipients=[MailRecipient(f"r{n}@customer.test")],
            subject=f"{subject} {n}",
            body_text=f"Body {n}",
            send_now=False,
        )
        for n in range(count)
    ]
