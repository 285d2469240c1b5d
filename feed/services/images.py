"""Remote images of received mail: the senders a user always shows them for.

Only a received message whose sender was not marked *unverified* can vouch for its
sender: otherwise anyone could write as a trusted newsletter to learn when a user
reads their mail.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from feed.models import ImageSender, Message


def message_sender_address(message: Message) -> str:
    """The received message's sender address (lower case), or ""."""
    if message.direction != Message.Direction.INCOMING:
        return ""
    contact = message.author_contact if message.author_contact_id else None
    if contact is not None and contact.email:
        return contact.email.strip().lower()
    user = message.author_user if message.author_user_id else None
    return (user.email or "").strip().lower() if user is not None else ""


def always_show_images(*, user: User, message: Message) -> str:
    """Show remote images of the sender of ``message`` to ``user`` from now on.
    Returns the address, or "" when the message cannot vouch for a sender."""
    address = message_sender_address(message)
    if not address or message.is_unverified_sender:
        return ""
    ImageSender.objects.get_or_create(user=user, address=address)
    return address
