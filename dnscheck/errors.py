"""Errors of the dnscheck app; each carries a translatable ``user_message``.

DNS failures are not exceptions here: they are ``unknown`` results stored on the
check. These are the admin's input mistakes and Knowlix configuration problems.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class DnsCheckError(Exception):
    default_message = _("The sending domain could not be saved.")

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = str(user_message or self.default_message)
        super().__init__(self.user_message)


class InvalidDomainName(DnsCheckError):
    """Not a host name such as company.com (the admin's input)."""

    default_message = _("Enter a domain name such as company.com or mail.company.com.")


class DomainAlreadyAdded(DnsCheckError):
    default_message = _("This domain is already a sending domain.")
