"""Errors of the feed; each carries a translatable ``user_message`` safe to show."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class FeedError(Exception):
    default_message = _("The message could not be posted.")

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = str(user_message or self.default_message)
        super().__init__(self.user_message)


class AttachmentTooLarge(FeedError):
    """A file is above ``settings.KNOWLIX_ATTACHMENT_MAX_BYTES`` (the user's fault)."""

    default_message = _("This file is too large.")


class EmptyMessage(FeedError):
    default_message = _("Write something or attach a file.")


class NothingToResend(FeedError):
    default_message = _("Only a failed or bounced recipient can be resent.")


class MailingNotDraft(FeedError):
    """Send on a mailing that is already sending or sent (a second click)."""

    default_message = _("This mailing has already been sent: it is sent only once.")


class EmptyAudience(FeedError):
    default_message = _(
        "Nobody is in this mailing's audience: there is no one to send to."
    )
