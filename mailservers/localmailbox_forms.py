"""The *Reply as <recipient>* form of a Local mailbox mail."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


class LocalReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=100_000)
    attachment = forms.FileField(required=False)

    def clean_attachment(self) -> object:
        attachment = self.cleaned_data.get("attachment")
        limit = settings.KNOWLIX_ATTACHMENT_MAX_BYTES
        if attachment is not None and attachment.size > limit:
            raise forms.ValidationError(
                f"{attachment.name} is {filesizeformat(attachment.size)}; files may be "
                f"at most {filesizeformat(limit)}."
            )
        return attachment
