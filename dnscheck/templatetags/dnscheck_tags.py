"""Template filters for DNS statuses: badge class and label."""

from __future__ import annotations

from django import template
from django.utils.functional import Promise

from dnscheck.models import STATUS_BADGES, Status

register = template.Library()


@register.filter
def status_badge(value: str) -> str:
    """``badge-ok`` and friends; ``badge-muted`` before the first check."""
    return STATUS_BADGES.get(value, "badge-muted") if value else "badge-muted"


@register.filter
def status_label(value: str) -> str | Promise:
    return Status(value).label if value in Status.values else "Not checked yet"
