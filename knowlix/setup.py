"""Idempotent set-up data: the default groups and their permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from knowlix.records import RECORD_MODELS

EMPLOYEES = "Employees"
READ_ONLY = "Read-only"


def ensure_default_groups() -> dict[str, Group]:
    """*Employees* may view, add and change every record and contact; *Read-only* may view."""
    models = [m._meta.model_name for m in RECORD_MODELS] + ["contact"]
    perms = Permission.objects.filter(content_type__app_label="knowlix").filter(
        Q(codename__in=[f"{a}_{m}" for m in models for a in ("view", "add", "change")])
    )
    view_perms = perms.filter(codename__startswith="view_")
    employees, _ = Group.objects.get_or_create(name=EMPLOYEES)
    employees.permissions.add(*perms)
    readonly, _ = Group.objects.get_or_create(name=READ_ONLY)
    readonly.permissions.add(*view_perms)
    return {EMPLOYEES: employees, READ_ONLY: readonly}
