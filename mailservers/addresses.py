"""Email addresses as SMTP carries them (RFC 5321, RFC 6531, IDNA 2008 / UTS 46).

An IDN domain (``kunde@bücher.example``) always goes out in its ASCII form
(``kunde@xn--bcher-kva.example``); a non-ASCII local part (``jörg@example.com``)
needs a server that offers SMTPUTF8, else that recipient alone fails with
:data:`NO_SMTPUTF8_REASON`. The composer, the queue and the SMTP backend all use
:func:`smtp_address`, so an address the composer accepts is one the queue can send.
Pure: no ORM, no settings.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# atext of RFC 5322 (ASCII), plus any non-ASCII character (RFC 6531 UTF8-non-ascii).
_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+$")
_QUOTED = re.compile(r'^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$')
_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_UNSAFE = re.compile(r"[\s<>\x00-\x1f\x7f\u0085\u2028\u2029]")
NO_SMTPUTF8_REASON = gettext_lazy(
    "%(address)s has non-ASCII characters before the @, and the outgoing server "
    "does not offer SMTPUTF8: it cannot carry this address. Ask the recipient for "
    "an ASCII address, or send through a server that supports SMTPUTF8."
)


class InvalidAddress(ValueError):
    """An address SMTP cannot carry; ``user_message`` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class SmtpAddress:
    """A checked address: ``domain`` is its ASCII (punycode) form, lower case."""

    local: str
    domain: str

    @property
    def addr_spec(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def needs_smtputf8(self) -> bool:
        return not self.local.isascii()


@functools.lru_cache(maxsize=4096)  # a fan-out's recipients share their domains
def ascii_domain(domain: str) -> str:
    """The domain's ASCII form (IDNA 2008 with UTS 46 mapping); raises
    :class:`InvalidAddress` for anything that is not a host name."""
    value = domain.strip().rstrip(".")
    if not value:
        raise InvalidAddress(_("The domain is missing."))
    try:
        ascii_form = (
            value.lower()
            if value.isascii()
            else idna.encode(value, uts46=True).decode("ascii")
        )
    except (idna.IDNAError, UnicodeError):
        raise InvalidAddress(
            _("%(domain)s is not a valid domain name.") % {"domain": value}
        ) from None
    labels = ascii_form.lower().split(".")
    if (
        len(ascii_form) > 253
        or len(labels) < 2
        or not all(_LDH_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidAddress(
            _("%(domain)s is not a valid domain name.") % {"domain": value}
        )
    return ascii_form.lower()


def smtp_address(address: str) -> SmtpAddress:
    """Check ``address`` (a bare ``local@domain``) and give its SMTP form."""
    value = address.strip()
    if not value or _UNSAFE.search(value):
        raise InvalidAddress(
            _("%(address)r is not an email address.") % {"address": value}
        )
    local, at, domain = value.rpartition("@")
    if not at or not local:
        raise InvalidAddress(
            _("%(address)s is not an email address (no @).") % {"address": value}
        )
    if len(local.encode()) > 64:
        raise InvalidAddress(
            _("The part before the @ of %(address)s is longer than 64 bytes.")
            % {"address": value}
        )
    if not _QUOTED.match(local) and not all(
        _ATOM.match(atom) for atom in local.split(".")
    ):
        raise InvalidAddress(
            _("%(address)s is not an email address (the part before the @).")
            % {"address": value}
        )
    try:
        domain = ascii_domain(domain)
    except InvalidAddress as exc:
        raise InvalidAddress(
            _("%(address)s: %(reason)s")
            % {"address": value, "reason": exc.user_message}
        ) from None
    return SmtpAddress(local=local, domain=domain)


def is_valid_domain(value: str) -> bool:
    try:
        ascii_domain(value)
    except InvalidAddress:
        return False
    return True
