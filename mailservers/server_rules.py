"""Field rules shared by the outgoing and incoming server forms.

Host names (or IP addresses), ports 1-65535, From Filter entries (each an address
or a domain) and the warning when a port and a security setting do not go together
(465 is SSL/TLS, 587 STARTTLS; 993/995 SSL/TLS, 143/110 plain or STARTTLS). Each
refusal says what is wrong with the value. The password field stays on the form for
every method (the page's script hides it for sign-in methods), so choosing *User
name and password* on a Gmail preset shows it at once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext as _

from mailservers.addresses import InvalidAddress, ascii_domain, smtp_address

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# port -> the security it goes with, and the name of that security
_PORT_SECURITY = {
    465: ("ssl", "SSL/TLS"),
    587: ("starttls", "STARTTLS"),
    993: ("ssl", "SSL/TLS"),
    995: ("ssl", "SSL/TLS"),
}
_PLAIN_PORTS = {25, 143, 110}
PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]


def clean_host(value: str) -> str:
    """A host name (``smtp.example.com``, ``mailhog``) or an IP address."""
    host = value.strip().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not host:
        raise forms.ValidationError(_("Enter the server's host name."))
    try:
        ascii_form = ascii_domain(host) if "." in host else host.lower()
    except InvalidAddress:
        ascii_form = ""
    if not ascii_form or not all(_LABEL.match(p) for p in ascii_form.split(".")):
        raise forms.ValidationError(
            _(
                "%(host)s is not a host name: use letters, digits, dashes and dots, "
                "e.g. smtp.example.com (no spaces, no scheme, no port)."
            )
            % {"host": host}
        )
    return ascii_form


def clean_from_filter(value: str) -> str:
    """Comma-separated addresses or domains, each checked; stored lower-case."""
    entries, errors = [], []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        try:
            if "@" in entry:
                entries.append(smtp_address(entry).addr_spec.lower())
            else:
                entries.append(ascii_domain(entry))
        except InvalidAddress:
            errors.append(
                _("%(entry)s is neither an email address nor a domain.")
                % {"entry": entry}
            )
    if errors:
        raise forms.ValidationError(errors)
    return ", ".join(entries)


def port_security_warning(port: int | None, security: str) -> str:
    """A warning when the port usually goes with another security; else ""."""
    if not port:
        return ""
    expected = _PORT_SECURITY.get(port)
    if expected and expected[0] != security:
        return _(
            "Port %(port)s usually uses %(security)s: a mismatch makes the "
            "connection hang or fail. Check the server's documentation."
        ) % {"port": port, "security": expected[1]}
    if port in _PLAIN_PORTS and security == "ssl":
        return _(
            "Port %(port)s usually uses no encryption or STARTTLS, not SSL/TLS: "
            "check the port (465 for SMTP, 993 for IMAP, 995 for POP3)."
        ) % {"port": port}
    return ""


class ServerFormRules:
    """Mixin of a server ModelForm: host and port rules, and ``warnings``."""

    cleaned_data: dict[str, Any]
    fields: dict[str, forms.Field]

    def init_rules(self) -> None:
        """Call at the end of the form's ``__init__``."""
        port = self.fields.get("port")
        if isinstance(port, forms.IntegerField):
            port.validators = [*port.validators, *PORT_VALIDATORS]
            port.widget.attrs.update({"min": 1, "max": 65535})
        password = self.fields.get("password")
        if password is not None:
            password.widget.attrs["data-password-field"] = "1"
            password.help_text = _(
                "Only for “User name and password” (for Gmail, an app password). "
                "Stored encrypted; leave empty to keep the current one."
            )

    def clean_host(self) -> str:
        host = self.cleaned_data.get("host") or ""
        if not host and not self.fields["host"].required:
            return ""
        return clean_host(host)

    @property
    def warnings(self) -> list[str]:
        data = getattr(self, "cleaned_data", None) or {}
        warning = port_security_warning(data.get("port"), data.get("security") or "")
        return [warning] if warning else []
