"""The OAuth client registrations form (Outlook and Gmail client id/secret, tenant).

Secrets are write-only: the field is always rendered empty, an empty submission
keeps the stored secret, and only a ``••••cdef`` hint is ever shown back.
"""

from __future__ import annotations

from typing import Any

from django import forms

from mailservers.oauth import config


class OAuthClientsForm(forms.Form):
    outlook_client_id = forms.CharField(
        label="Outlook client ID",
        required=False,
        max_length=200,
        help_text="Azure › App registrations › your app › Application (client) ID.",
    )
    outlook_client_secret = forms.CharField(
        label="Outlook client secret",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    outlook_tenant = forms.CharField(
        label="Outlook tenant (optional)",
        required=False,
        max_length=100,
        help_text="Your Directory (tenant) ID, or empty for “common”.",
    )
    gmail_client_id = forms.CharField(
        label="Gmail client ID",
        required=False,
        max_length=200,
        help_text="Google Cloud › APIs & Services › Credentials › OAuth 2.0 Client ID.",
    )
    gmail_client_secret = forms.CharField(
        label="Gmail client secret",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stored = {
            p: config.get_client_config(p) for p in (config.OUTLOOK, config.GMAIL)
        }
        kwargs.setdefault(
            "initial",
            {
                "outlook_client_id": self.stored[config.OUTLOOK].client_id,
                "outlook_tenant": self.stored[config.OUTLOOK].tenant,
                "gmail_client_id": self.stored[config.GMAIL].client_id,
            },
        )
        super().__init__(*args, **kwargs)
        for provider in (config.OUTLOOK, config.GMAIL):
            hint = self.stored[provider].secret_hint
            self.fields[f"{provider}_client_secret"].help_text = (
                f"Stored: {hint}. Leave empty to keep it." if hint else "Not set yet."
            )

    def clean(self) -> dict:
        data = super().clean()
        assert data is not None  # Form.clean() returns cleaned_data
        for provider in (config.OUTLOOK, config.GMAIL):
            client_id = (data.get(f"{provider}_client_id") or "").strip()
            secret = (data.get(f"{provider}_client_secret") or "").strip()
            if secret and not client_id:
                self.add_error(f"{provider}_client_id", "Enter the client ID too.")
            if client_id and not secret and not self.stored[provider].client_secret:
                self.add_error(f"{provider}_client_secret", "Enter the client secret.")
        tenant = (data.get("outlook_tenant") or "").strip()
        if tenant and not all(c.isalnum() or c in "-._" for c in tenant):
            self.add_error(
                "outlook_tenant", "A tenant is an ID or a domain, e.g. contoso.com."
            )
        return data

    def save(self) -> None:
        data = self.cleaned_data
        for provider in (config.OUTLOOK, config.GMAIL):
            config.save_client_config(
                provider=provider,
                client_id=data[f"{provider}_client_id"],
                client_secret=data[f"{provider}_client_secret"].strip() or None,
                tenant=data.get("outlook_tenant", "")
                if provider == config.OUTLOOK
                else "",
            )
