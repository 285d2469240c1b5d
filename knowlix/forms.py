"""Forms for contacts and records (model forms built from ``recordviews``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db import models

from knowlix.models import Contact, Team
from knowlix.recordviews import RecordKind
from knowlix.users import PeopleChoiceField, PersonChoiceField, active_people


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
        "Meta",
        (),
        {
            "model": model,
            "fields": list(kind.fields),
            "widgets": widgets,
            "formfield_callback": record_formfield,
        },
    )
    return type(f"{model.__name__}Form", (forms.ModelForm,), {"Meta": meta})


def record_formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """People by full name ("Nobody" when empty); no raw ``---------`` choice."""
    if isinstance(field, models.ForeignKey):
        if field.related_model is User:
            people = User.objects.order_by("first_name", "last_name", "username")
            return field.formfield(
                form_class=PersonChoiceField, queryset=people, **kwargs
            )
        kwargs.setdefault("empty_label", "None")
    return field.formfield(**kwargs)


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "company"]


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "members", "assignment", "default_assignee"]
        field_classes = {
            "members": PeopleChoiceField,
            "default_assignee": PersonChoiceField,
        }
        widgets = {"members": forms.CheckboxSelectMultiple}
        help_texts = {
            "members": "They follow every record created for the team: new mail "
            "reaches their inbox, or their email if they prefer.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("members", "default_assignee"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = active_people()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("assignment") == Team.Assignment.DEFAULT and not data.get(
            "default_assignee"
        ):
            self.add_error("default_assignee", "Choose who gets the team's records.")
        return data
