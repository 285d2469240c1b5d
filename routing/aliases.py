"""Whether an alias can route mail, and telling its creator when it cannot.

An alias goes invalid when something it points at is deleted after it was saved:
its record kind, its fixed or parent record, or a record its defaults name (say
``{"assignee_id": 7}`` once user 7 is gone). The Aliases page shows the reason;
routing quarantines mail to it with the reason, and its creator (else the admins)
gets one notice per new problem (``last_error`` remembers the last one told).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed.services import notify_users
from routing.models import Alias


def alias_problem(alias: Alias) -> str:
    """Why ``alias`` cannot route mail as configured, or "" if it can."""
    model = alias.model
    if model is None:
        return _("Its record kind no longer exists.")
    if alias.object_id is not None and alias.fixed_record() is None:
        return _("Its fixed record %(kind)s #%(id)s no longer exists.") % {
            "kind": model._meta.verbose_name,
            "id": alias.object_id,
        }
    if alias.parent_content_type_id is not None and alias.parent_record() is None:
        return _("Its parent record #%(id)s no longer exists.") % {
            "id": alias.parent_object_id
        }
    if (
        alias.contact_policy == Alias.ContactPolicy.FOLLOWERS
        and alias.parent_record() is None
    ):
        return _("It accepts followers only, but has no parent record to follow.")
    return _defaults_problem(alias)


def _defaults_problem(alias: Alias) -> str:
    assert alias.model is not None
    return defaults_problem(model=alias.model, defaults=alias.defaults)


def defaults_problem(*, model: type[Model], defaults: object) -> str:
    """Why ``defaults`` cannot fill a new ``model`` record ("" if they can): each a
    field a user may set (not its id, reply token or timestamps), with a value the
    field takes, and a record it names that exists. The Aliases form and routing
    both ask this."""
    defaults = defaults or {}
    if not isinstance(defaults, dict):
        return _("Its defaults are not an object of field names and values.")
    kind = model._meta.verbose_name
    for name, value in defaults.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return _("Its default “%(field)s” is no field of %(kind)s.") % {
                "field": name,
                "kind": kind,
            }
        if (
            not isinstance(field, models.Field)
            or field.primary_key
            or not field.editable
            or field.many_to_many
        ):
            return _("Its default “%(field)s” cannot be set on a new %(kind)s.") % {
                "field": name,
                "kind": kind,
            }
        related = field.related_model if field.many_to_one else None
        if related is not None and not isinstance(related, str):
            if value in (None, ""):
                continue
            try:
                exists = related._default_manager.filter(pk=value).exists()
            except (TypeError, ValueError, ValidationError):
                exists = False
            if not exists:
                return _(
                    "Its default “%(field)s” points at a deleted %(kind)s #%(id)s."
                ) % {
                    "field": field.name,
                    "kind": related._meta.verbose_name,
                    "id": value,
                }
            continue
        try:
            field.clean(value, None)
        except ValidationError as exc:
            return _("Its default “%(field)s” is wrong: %(reason)s") % {
                "field": name,
                "reason": " ".join(exc.messages),
            }
    return ""


def save_alias(*, alias: Alias, user: User) -> Alias:
    """Save an alias edited by ``user``: a new alias is theirs (they are told of
    its problems), and a saved alias has no problem told yet (told again)."""
    if alias.pk is None:
        alias.created_by = user
    alias.last_error, alias.last_error_at = "", None
    alias.save()
    return alias


def report_alias_problem(*, alias: Alias, reason: str) -> None:
    """Remember the problem routing met on ``alias``; tell its creator (else the
    admins) once, when the problem is new. Call inside the routing transaction."""
    if alias.last_error == reason:
        return
    alias.last_error, alias.last_error_at = reason, timezone.now()
    alias.save(update_fields=["last_error", "last_error_at"])
    users = get_user_model().objects.filter(is_active=True)
    if alias.created_by_id is not None:
        users = users.filter(pk=alias.created_by_id)
    else:
        users = users.filter(Q(is_staff=True) | Q(is_superuser=True))
    subject = _("The alias %(name)s is invalid") % {"name": alias.name}
    body = (
        f"<p>{escape(_('Mail to this alias is quarantined:'))} {escape(reason)}</p>"
        f"<p>{escape(_('Fix the alias, then reprocess the quarantined mail.'))}</p>"
    )
    notify_users(target=alias, users=users, subject=subject, body_html=body)
