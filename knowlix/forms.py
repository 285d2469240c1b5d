"""Forms for contacts and records (model forms built from ``recordviews``)."""

from __future__ import annotations

from django import forms
from django.db import models

from knowlix.models import Contact
from knowlix.recordviews import RecordKind


class DateInput(forms.DateInput):
    input_type = "date"


def record_form_class(kind: RecordKind) -> type[forms.ModelForm]:
    """A ModelForm for the record kind's editable fields."""
    model = kind.model
    widgets = {
        f.name: DateInput()
        for f in model._meta.get_fields()
        if f.name in kind.fields
        and isinstance(f, models.Field)
        and f.get_internal_type() == "DateField"
    }
    meta = type(
        "Meta", (), {"model": model, "fields": list(kind.fields), "widgets": widgets}
    )
    return type(f"{model.__name__}Form", (forms.ModelForm,), {"Meta": meta})


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "company"]
