"""What an Outlook OAuth or Gmail OAuth server looks like, for the server forms.

``apply_oauth_rules(server, kind=...)`` is called by the outgoing and incoming server
forms before saving: an OAuth server has no password, signs in as the connected
address, only sends as that address, and gets the provider's host/port/security when
those are still empty or on another provider's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailservers.models.incoming import IncomingServer
from mailservers.models.outgoing import OutgoingServer
from mailservers.oauth import google, microsoft

if TYPE_CHECKING:
    from django import forms

# (provider, server kind) -> host, port, security
SERVER_PRESETS: dict[tuple[str, str], dict[str, str | int]] = {
    ("outlook", "outgoing"): {
        "host": microsoft.SMTP_HOST,
        "port": 587,
        "security": "starttls",
    },
    ("outlook", "incoming"): {
        "host": microsoft.IMAP_HOST,
        "port": 993,
        "security": "ssl",
    },
    ("gmail", "outgoing"): {
        "host": google.SMTP_HOST,
        "port": 587,
        "security": "starttls",
    },
    ("gmail", "incoming"): {"host": google.IMAP_HOST, "port": 993, "security": "ssl"},
}
_KNOWN_HOSTS = {preset["host"] for preset in SERVER_PRESETS.values()}


def apply_oauth_rules(
    server: OutgoingServer | IncomingServer, *, kind: str
) -> list[str]:
    """Apply the rules in place; return the names of the fields changed."""
    provider = getattr(server, "auth_method", "")
    preset = SERVER_PRESETS.get((provider, kind))
    if preset is None:
        return []
    changed: list[str] = []

    def put(name: str, value: object) -> None:
        if hasattr(server, name) and getattr(server, name) != value:
            setattr(server, name, value)
            changed.append(name)

    if not server.host or server.host in _KNOWN_HOSTS:
        for name, value in preset.items():
            put(name, value)
        if kind == "incoming" and getattr(server, "kind", "") == "pop3":
            put("port", 995)  # the providers' POP3 over implicit TLS
    put("password", "")
    grant = getattr(server, "oauth_grant", None)
    if grant is not None and grant.provider != provider:
        put("oauth_grant", None)  # a Gmail grant cannot sign in to Outlook
    elif grant is not None and grant.account_address:
        put("username", grant.account_address)
        if kind == "outgoing":
            put("from_filter", grant.account_address)
    return changed


OAUTH_METHODS = ("outlook", "gmail")  # the auth_method of a sign-in server


def form_uses_oauth(form: forms.ModelForm) -> bool:
    """True when a server form (bound or not) is for an Outlook or Gmail sign-in."""
    if form.is_bound:
        method = form.data.get(form.add_prefix("auth_method"), "")
    else:
        method = form.initial.get("auth_method") or form.instance.auth_method
    return method in OAUTH_METHODS
