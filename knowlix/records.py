"""The registry of record kinds and the ``app_label.model:pk`` labels that name a record."""

from __future__ import annotations

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from knowlix.models import (
    Expense,
    Invoice,
    JobApplication,
    Opportunity,
    Project,
    Record,
    SalesOrder,
    Ticket,
)

# In the order of the top bar's apps.
RECORD_MODELS: tuple[type[Record], ...] = (
    Opportunity,
    SalesOrder,
    Invoice,
    Project,
    Ticket,
    Expense,
    JobApplication,
)


def record_label(record: Model) -> str:
    """``"knowlix.ticket:42"``: stable text naming a record (used in JSON output)."""
    return f"{record._meta.label_lower}:{record.pk}"


def get_record_by_label(label: str) -> Record | None:
    """The record a :func:`record_label` names, or None."""
    try:
        model_label, pk = label.rsplit(":", 1)
        model = apps.get_model(model_label)
    except (ValueError, LookupError):
        return None
    if not issubclass(model, Record):
        return None
    return model._default_manager.filter(pk=pk).first()


def record_content_types() -> list[ContentType]:
    return list(ContentType.objects.get_for_models(*RECORD_MODELS).values())
