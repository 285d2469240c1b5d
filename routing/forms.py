"""Forms of the routing technical pages."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType

from knowlix import params
from knowlix.records import record_content_types
from routing.aliases import defaults_problem
from routing.matching import REPLY_PREFIX
from routing.models import Alias

LOCAL_PART = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class RecordKindField(forms.ModelChoiceField):
    """Content types of record kinds, each named by its kind ("Ticket")."""

    def label_from_instance(self, obj: ContentType) -> str:
        model = obj.model_class()
        assert model is not None  # only record kinds are offered
        return str(model._meta.verbose_name).capitalize()


class AliasForm(forms.ModelForm):
    class Meta:
        model = Alias
        fields = [
            "name",
            "content_type",
            "object_id",
            "defaults",
            "parent_content_type",
            "parent_object_id",
            "contact_policy",
            "bounce_message",
            "team",
            "is_active",
        ]
        field_classes = {
            "content_type": RecordKindField,
            "parent_content_type": RecordKindField,
        }
        widgets = {"bounce_message": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "object_id": "Leave empty to create a record per mail; set to post every "
            "mail on that record instead.",
            "defaults": 'Field values of created records, e.g. {"priority": "high"}.',
            "parent_object_id": "The record whose followers the “Followers only” "
            "policy accepts (e.g. the project of the tickets it creates); a fixed "
            "record is its own parent.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = [ct.pk for ct in record_content_types()]
        empty = {"content_type": "Choose a record kind", "parent_content_type": "None"}
        for name in ("content_type", "parent_content_type"):
            kinds = self.fields[name]
            assert isinstance(kinds, RecordKindField)  # Meta.field_classes
            kinds.queryset = ContentType.objects.filter(pk__in=ids)
            kinds.empty_label = empty[name]  # not Django's "---------"
        team = self.fields["team"]
        assert isinstance(team, forms.ModelChoiceField)
        team.empty_label = "No team"

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip().lower()
        if not LOCAL_PART.match(name):
            raise forms.ValidationError(
                "Use letters, digits, dots, dashes or underscores (the part before @)."
            )
        reserved = {params.get_param(params.BOUNCE_ALIAS) or "bounce", "mailer-daemon"}
        if name in reserved or name.startswith(REPLY_PREFIX.rstrip("+")):
            raise forms.ValidationError(
                "This name is reserved for bounces and replies."
            )
        return name

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        content_type = data.get("content_type")
        model = content_type.model_class() if content_type else None
        if model is None:
            return data
        object_id = data.get("object_id")
        if (
            object_id is not None
            and not model._default_manager.filter(pk=object_id).exists()
        ):
            self.add_error(
                "object_id", f"There is no {model._meta.verbose_name} #{object_id}."
            )
        self._clean_parent(data)
        problem = defaults_problem(model=model, defaults=data.get("defaults"))
        if problem:
            self.add_error("defaults", problem)
        return data

    def _clean_parent(self, data: dict[str, Any]) -> None:
        """The parent record exists; the followers policy has one to follow."""
        kind, pk = data.get("parent_content_type"), data.get("parent_object_id")
        if (kind is None) != (pk is None):
            self.add_error("parent_object_id", "Give both the parent's kind and id.")
            return
        model = kind.model_class() if kind is not None else None
        if model is not None and not model._default_manager.filter(pk=pk).exists():
            self.add_error(
                "parent_object_id", f"There is no {model._meta.verbose_name} #{pk}."
            )
        followers = data.get("contact_policy") == Alias.ContactPolicy.FOLLOWERS
        if followers and kind is None and data.get("object_id") is None:
            self.add_error(
                "contact_policy",
                "“Followers only” needs a parent record (or a fixed record) whose "
                "followers it accepts.",
            )
