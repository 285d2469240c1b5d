"""Errors of mail routing, split by whose fault they are.

A ``SenderError`` is the sender's problem (refused with a polite bounce, logged at
info); a ``RoutingConfigError`` is ours (logged as an error, the mail is quarantined).
Every exception carries a translatable ``user_message`` shown on the quarantine page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from routing.models import Alias


class RoutingError(Exception):
    """Base class; ``user_message`` is safe to show (no secrets, no traceback)."""

    default_message = _("The message could not be routed.")

    def __init__(self, user_message: str | None = None, *, detail: str = "") -> None:
        self.user_message = str(user_message or self.default_message)
        self.detail = detail
        super().__init__(self.user_message)


class ParseError(RoutingError):
    """The bytes are not a message we can read (empty, binary, nested too deep)."""

    default_message = _("The message could not be parsed.")


class SenderError(RoutingError):
    """The sender's fault: refused by a contact policy, a loop, an unknown address."""

    default_message = _("The message was refused.")


class RoutingConfigError(RoutingError):
    """Our configuration is wrong (no catch-all domain, an alias without a kind).
    ``alias``: the alias at fault, whose creator is told (``routing.aliases``)."""

    default_message = _("Mail routing is not configured correctly.")

    def __init__(
        self,
        user_message: str | None = None,
        *,
        detail: str = "",
        alias: Alias | None = None,
    ) -> None:
        super().__init__(user_message, detail=detail)
        self.alias = alias
