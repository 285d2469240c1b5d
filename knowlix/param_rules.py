"""The rules of the known system parameters, shared by every page that writes them.

General Settings and the System parameters page both call :func:`clean_param`, so
no page can store what another refuses; :mod:`knowlix.params` also falls back to
the built-in default when a stored value breaks these rules (a row written before
they existed, or straight into the database), so no stored value can make a page
or a send fail. Pure: no ORM, no settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import idna

CATCHALL_DOMAIN = "mail.catchall.domain"
DEFAULT_FROM = "mail.default.from"
BOUNCE_ALIAS = "mail.bounce.alias"
LOOP_LIMIT = "mail.gateway.loop.threshold"
LOOP_MINUTES = "mail.gateway.loop.minutes"
USE_CUSTOM_SERVERS = "mail.use_custom_servers"
TRUSTED_AUTHSERV_IDS = "mail.gateway.authserv_ids"
DKIM_VERIFY = "mail.gateway.dkim_verify"
LOOP_ALLOWLIST = "mail.gateway.loop.allowlist"
REFUSALS_PER_HOUR = "mail.gateway.refusals_per_hour"

_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5322 dot-atom text, ASCII: what a system address's local part may be. No
# "+": Knowlix adds "+<token>" to the bounce alias (VERP) and to reply addresses.
_LOCAL = re.compile(
    r"^[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+)*$"
)
_AUTHSERV = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


class InvalidParameter(ValueError):
    """A value the parameter cannot take; ``user_message`` says what it needs."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def clean_domain(value: str) -> str:
    """A host name such as ``company.com`` (IDN accepted, stored as punycode)."""
    domain = value.strip().lower().lstrip("@").rstrip(".")
    try:
        ascii_form = domain if domain.isascii() else idna.encode(domain, uts46=True)
        domain = ascii_form.decode() if isinstance(ascii_form, bytes) else ascii_form
    except (idna.IDNAError, UnicodeError):
        raise InvalidParameter("Enter a domain such as company.com.") from None
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or not all(_LDH_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidParameter("Enter a domain such as company.com.")
    return domain


def clean_local_part(value: str) -> str:
    """The part before the @ of a system address (ASCII, no "+")."""
    local = value.strip()
    if not _LOCAL.match(local) or len(local) > 64:
        raise InvalidParameter(
            "Enter only the part before the @, e.g. notifications (letters, digits, "
            "dots, dashes; no + or spaces)."
        )
    return local


def clean_default_from(value: str) -> str:
    """``notifications`` (at the catch-all domain) or a full address."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    try:
        if not at:
            return clean_local_part(value)
        return f"{clean_local_part(local)}@{clean_domain(domain)}"
    except InvalidParameter:
        raise InvalidParameter(
            "Enter only the part before the @ (e.g. notifications, at the alias "
            "domain), or a full address such as notifications@company.com."
        ) from None


def clean_bool(value: str) -> str:
    word = value.strip().lower()
    if word in {"true", "1", "yes", "on"}:
        return "true"
    if word in {"false", "0", "no", "off", ""}:
        return "false"
    raise InvalidParameter("Enter true or false.")


def _clean_count(value: str, *, low: int, high: int) -> str:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidParameter(f"Enter a whole number from {low} to {high}.")
    return str(int(text))


def clean_loop_limit(value: str) -> str:
    return _clean_count(value, low=1, high=100_000)


def clean_loop_minutes(value: str) -> str:
    return _clean_count(value, low=1, high=7 * 24 * 60)


def clean_refusals_per_hour(value: str) -> str:
    return _clean_count(value, low=0, high=10_000)


def _entries(value: str) -> list[str]:
    return [e.strip() for e in value.split(",") if e.strip()]


def clean_allowlist(value: str) -> str:
    """Comma-separated addresses or domains."""
    cleaned = []
    for entry in _entries(value):
        try:
            if "@" in entry:
                local, _at, domain = entry.rpartition("@")
                if not local or any(c.isspace() or c in "<>," for c in local):
                    raise InvalidParameter("")
                cleaned.append(f"{local}@{clean_domain(domain)}")
            else:
                cleaned.append(clean_domain(entry))
        except InvalidParameter:
            raise InvalidParameter(
                f"{entry} is neither an address nor a domain; separate entries "
                "with commas."
            ) from None
    return ", ".join(cleaned)


def clean_authserv_ids(value: str) -> str:
    """Comma-separated authserv-ids (host-like names of trusted MTAs)."""
    entries = _entries(value)
    for entry in entries:
        if not _AUTHSERV.match(entry):
            raise InvalidParameter(
                f"{entry} is not an authserv-id (a host name such as mx.company.com); "
                "separate entries with commas."
            )
    return ", ".join(entries)


RULES: dict[str, Callable[[str], str]] = {
    CATCHALL_DOMAIN: clean_domain,
    DEFAULT_FROM: clean_default_from,
    BOUNCE_ALIAS: clean_local_part,
    LOOP_LIMIT: clean_loop_limit,
    LOOP_MINUTES: clean_loop_minutes,
    USE_CUSTOM_SERVERS: clean_bool,
    DKIM_VERIFY: clean_bool,
    TRUSTED_AUTHSERV_IDS: clean_authserv_ids,
    LOOP_ALLOWLIST: clean_allowlist,
    REFUSALS_PER_HOUR: clean_refusals_per_hour,
}


def clean_param(key: str, value: str) -> str:
    """The value to store for ``key``; raises :class:`InvalidParameter`. Unknown
    keys are stored as given (trimmed)."""
    rule = RULES.get(key.strip())
    if rule is None:
        return value.strip()
    if not value.strip() and rule not in (clean_allowlist, clean_authserv_ids):
        raise InvalidParameter(
            "Enter a value, or delete the parameter to use its default."
        )
    return rule(value)


def is_valid(key: str, value: str) -> bool:
    try:
        clean_param(key, value)
    except InvalidParameter:
        return False
    return True
