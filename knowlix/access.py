"""Who may see and change which record, from Django's model permissions.

No ``view_<model>`` permission: the record does not exist for that user (404).
``view`` without ``change``: read-only (writes raise ``PermissionDenied``).
Every view that touches a record goes through :func:`get_record_for_user`.
A kind marked ``ADMIN_ONLY`` (mailings) is for admins alone: view, add and change
all need :func:`knowlix.users.is_admin`, whatever the model permissions say.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404

from knowlix.models import Record
from knowlix.users import is_admin

AnyUser = User | AnonymousUser


def _perm(model: type[Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def _allowed(user: AnyUser, model: type[Model], action: str) -> bool:
    if getattr(model, "ADMIN_ONLY", False):
        return is_admin(user)
    return bool(user.is_active and user.has_perm(_perm(model, action)))


def can_view_model(user: AnyUser, model: type[Model]) -> bool:
    return _allowed(user, model, "view")


def can_change_model(user: AnyUser, model: type[Model]) -> bool:
    return _allowed(user, model, "change")


def can_add_model(user: AnyUser, model: type[Model]) -> bool:
    return _allowed(user, model, "add")


def can_view_record(user: AnyUser, record: Model) -> bool:
    return can_view_model(user, type(record))


def visible_records(user: AnyUser, model: type[Model]) -> QuerySet:
    """All rows of ``model`` the user may see (none without the view permission)."""
    if not can_view_model(user, model):
        return model._default_manager.none()
    return model._default_manager.all()


def get_record_for_user(
    user: AnyUser, ct_id: int, object_id: int, *, write: bool = False
) -> Record:
    """The record, or 404 when the user may not see it; read-only + write → 403."""
    try:
        content_type = ContentType.objects.get_for_id(ct_id)
    except ContentType.DoesNotExist:
        raise Http404("No such record kind") from None
    model = content_type.model_class()
    if model is None or not issubclass(model, Record):
        raise Http404("No such record kind")
    return get_model_record_for_user(user, model, object_id, write=write)


def get_model_record_for_user(
    user: AnyUser, model: type[Record], object_id: int, *, write: bool = False
) -> Record:
    record = visible_records(user, model).filter(pk=object_id).first()
    if record is None:
        raise Http404("No such record")
    if write and not can_change_model(user, model):
        raise PermissionDenied("This record is read-only for you.")
    return record
