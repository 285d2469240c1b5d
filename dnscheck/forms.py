"""Forms of the sending-domain pages."""

from __future__ import annotations

from django import forms

from dnscheck.checks import is_valid_domain_name, normalize_domain
from dnscheck.errors import DomainAlreadyAdded, InvalidDomainName
from dnscheck.models import SendingDomain


class SendingDomainForm(forms.Form):
    name = forms.CharField(
        label="Domain",
        max_length=253,
        help_text="The part after @ in the From address, e.g. company.com or "
        "marketing.company.com.",
        widget=forms.TextInput(attrs={"placeholder": "company.com", "autofocus": True}),
    )

    def clean_name(self) -> str:
        name = normalize_domain(self.cleaned_data["name"].rpartition("@")[2])
        if not is_valid_domain_name(name):
            raise forms.ValidationError(InvalidDomainName.default_message)
        if SendingDomain.objects.filter(name=name).exists():
            raise forms.ValidationError(DomainAlreadyAdded.default_message)
        return name
