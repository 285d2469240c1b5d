"""The Outgoing Mail Server form (Settings > Technical > Email).

A preset fills host, port, security, authentication and default sending limits. An
OAuth server (Outlook/Gmail sign-in) has no password and sends only as the connected
address: the page hides the password row for it (``static/js/server_form.js``; it
appears as soon as *User name and password* is chosen), the From Filter is not
editable, and ``apply_oauth_rules`` enforces both on save whatever is posted. Host,
port and From Filter follow ``mailservers.server_rules``.
"""

from __future__ import annotations

from typing import Any

from django import forms

from mailservers.models import PRESET_FIELDS, PRESETS, OutgoingServer
from mailservers.oauth.presets import apply_oauth_rules, form_uses_oauth
from mailservers.server_rules import ServerFormRules, clean_from_filter


class OutgoingServerForm(ServerFormRules, forms.ModelForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. Leave empty to keep the current one.",
    )

    class Meta:
        model = OutgoingServer
        fields = [
            "name",
            "host",
            "port",
            "security",
            "auth_method",
            "username",
            "from_filter",
            "priority",
            "is_active",
            "limit_per_minute",
            "limit_per_hour",
            "limit_per_day",
        ]
        help_texts = {
            "security": "SSL/TLS usually on port 465; STARTTLS on 587 (or 25).",
            "limit_per_minute": "Mail beyond a limit waits; it is never dropped.",
            "is_active": (
                "Inactive servers are not chosen for new mail; mail already queued "
                "on it is still sent (cancel it in the Email queue)."
            ),
        }

    field_order = ["name", "host", "port", "security", "auth_method", "username"]

    def __init__(self, *args: Any, preset: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preset = preset if preset in PRESETS else self.instance.preset
        if preset in PRESETS and not self.is_bound and not self.instance.pk:
            values = PRESETS[preset]
            self.initial["name"] = values["label"]
            self.initial.update((k, values[k]) for k in PRESET_FIELDS if k in values)
        self.init_rules()  # the password row stays: the page hides it for sign-in
        if self.uses_oauth:
            from_filter = self.fields["from_filter"]
            from_filter.disabled = True
            from_filter.help_text = (
                "The connected account's address: an OAuth server only sends as it."
            )

    @property
    def uses_oauth(self) -> bool:
        """True when the form is for an Outlook or Gmail sign-in server."""
        return form_uses_oauth(self)

    def clean_from_filter(self) -> str:
        if self.fields["from_filter"].disabled:
            return str(self.initial.get("from_filter") or self.instance.from_filter)
        return clean_from_filter(self.cleaned_data.get("from_filter") or "")

    def save(self, commit: bool = True) -> OutgoingServer:
        server = super().save(commit=False)
        if self.cleaned_data.get("password"):
            server.password = self.cleaned_data["password"]
        if self.preset:
            server.preset = self.preset
        # A saved change is the fix people make after a failure: try again now.
        server.paused_until = None
        server.needs_attention = False
        apply_oauth_rules(server, kind="outgoing")
        if commit:
            server.save()
        return server
