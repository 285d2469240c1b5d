"""Errors of mail servers, split by whose fault they are.

Every exception carries a translatable ``user_message`` shown in the UI beside the
object it concerns (a mail, a server). Shared by the outgoing, incoming and OAuth
sides: append new classes at the end.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class MailServerError(Exception):
    """Base class; ``user_message`` is safe to show (no secrets, no traceback)."""

    default_message = _("The mail server reported a problem.")

    def __init__(
        self, user_message: str | Promise | None = None, *, detail: str = ""
    ) -> None:
        self.user_message = str(user_message or self.default_message)
        self.detail = detail
        super().__init__(self.user_message)


class TransientError(MailServerError):
    """Worth retrying later: timeouts, dropped connections, 4xx replies."""


class PermanentError(MailServerError):
    """Retrying will not help until someone changes something."""


class ServerAuthError(PermanentError):
    """Bad password, revoked token: the server needs attention, the others go on."""

    default_message = _("The server refused our credentials.")


class ServerConfigError(PermanentError):
    """Our configuration is wrong (unknown host, port/security mismatch, bad certificate)."""


class DeliveryError(MailServerError):
    """Sending one mail failed; ``permanent`` says whether a retry can help."""

    def __init__(
        self,
        user_message: str | None = None,
        *,
        permanent: bool,
        smtp_code: int | None = None,
        detail: str = "",
    ) -> None:
        self.permanent = permanent
        self.smtp_code = smtp_code
        super().__init__(user_message, detail=detail)


class OAuthReconnectRequired(ServerAuthError):
    """The provider refused the grant (revoked, expired, password reset): reconnect."""

    default_message = _(
        "The account's authorization was revoked or has expired: reconnect the account."
    )


class OAuthProviderUnavailable(TransientError):
    """The provider's token endpoint could not be reached or failed; retry later."""

    default_message = _("The sign-in provider could not be reached; retrying later.")


class OAuthConfigError(ServerConfigError):
    """Client id/secret missing or refused (an expired Azure client secret, say)."""

    default_message = _(
        "The OAuth client id or secret is missing or was refused: check General Settings."
    )


class ServerQuotaError(TransientError):
    """The provider refuses more mail for now (sending quota): pause the server."""

    default_message = _("The server's sending quota is used up; sending resumes later.")


class MailTooLargeError(PermanentError):
    """A mail above ``KNOWLIX_MAIL_MAX_BYTES``: refused before it is queued."""

    default_message = _("This mail is too large to send.")


class UncertainDeliveryError(DeliveryError):
    """The whole mail was sent but its reply never came: nobody can tell whether the
    server kept it. Never retried on its own (it could arrive twice)."""

    def __init__(self, user_message: str | None = None, *, detail: str = "") -> None:
        super().__init__(user_message, permanent=True, detail=detail)
