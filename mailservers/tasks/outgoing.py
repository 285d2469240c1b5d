"""Celery tasks of the outgoing side (thin: ids in, one service call).

Failures are recorded on the rows by the services (per-recipient state, backoff,
server pauses), so these tasks never retry themselves: the beat's ``process_outbox``
picks deferred mail up when it is due. Names match ``knowlix.celery``'s schedule.
"""

from __future__ import annotations

from celery import shared_task

from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services import outbox

__all__ = ["process_outbox", "recover_stuck_mail", "send_mail"]


@shared_task(name="mailservers.tasks.send_mail")
def send_mail(mail_id: int) -> None:
    """Send one mail right after the post that queued it committed."""
    outbox.send_mail_item(mail_id=mail_id)


@shared_task(name="mailservers.tasks.process_outbox")
def process_outbox() -> None:
    """Drain every due mail (beat, every minute), then tell owners and admins of OAuth
    grants found revoked meanwhile (by this drain or any other path)."""
    outbox.process_outbox()
    send_reconnect_notices()


@shared_task(name="mailservers.tasks.recover_stuck_mail")
def recover_stuck_mail() -> None:
    """Put mail left in *sending* by a crashed worker back in the queue."""
    outbox.recover_stuck_mail()
