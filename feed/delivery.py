"""The feed's one door to outgoing mail: turn a posted message into queued mail.

Called on commit by :mod:`feed.services`, so a rolled-back post never emails anyone.
Everything that knows about ``mailservers`` lives here, so a change of its API is
one change in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from feed.models import Message, MessageRecipient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Addressee:
    address: str
    name: str = ""


def queue_message_mail(
    *, message: Message, addressees: list[Addressee], for_users: bool
) -> None:
    """Queue one mail of ``message`` to ``addressees``."""
    if not addressees:
        return
    logger.info(
        "feed message %s: %d addressee(s) (users=%s) not queued yet",
        message.pk,
        len(addressees),
        for_users,
    )


def recipient_related() -> tuple[str, ...]:
    """``select_related`` paths that bring a recipient's delivery state."""
    return ()


def delivery_state(recipient: MessageRecipient) -> tuple[str, str]:
    """(state, reason) of the mail sent to ``recipient``; ("", "") if none."""
    return ("", "")
