"""What a feed message hangs off, and whether a user may open it.

A business record (``knowlix.models.Record``) follows Django's model permissions
(``knowlix.access``). Anything else a notice is about (a sending domain, an OAuth
grant, an incoming server) opens only if it says so itself: it defines
``get_absolute_url()`` and ``can_be_opened_by(user) -> bool``, the same check as its
own page. Anything that declares neither is a 404, as before.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import Http404

from knowlix.access import can_view_record, get_record_for_user
from knowlix.models import Record


def can_open_target(user: User | AnonymousUser, target: Model) -> bool:
    """May ``user`` open ``target``'s page (and so read notices about it)?"""
    if not user.is_active:
        return False
    if isinstance(target, Record):
        return can_view_record(user, target)
    opens = getattr(target, "can_be_opened_by", None)
    if not callable(opens) or not hasattr(target, "get_absolute_url"):
        return False
    return bool(opens(user))


def get_target_for_user(
    user: User | AnonymousUser, ct_id: int, object_id: int
) -> Model:
    """The record or object a message hangs off, or 404 when the user may not open it."""
    try:
        model = ContentType.objects.get_for_id(ct_id).model_class()
    except ContentType.DoesNotExist:
        raise Http404("No such record kind") from None
    if model is not None and issubclass(model, Record):
        return get_record_for_user(user, ct_id, object_id)
    target = None
    if model is not None:
        target = model._default_manager.filter(pk=object_id).first()
    if target is None or not can_open_target(user, target):
        raise Http404("No such record")
    return target


def target_url(target: Model, message_id: int) -> str:
    """Where opening a notice lands: a record at the message, else the object's page."""
    if isinstance(target, Record):
        url = target.get_absolute_url()
        return f"{url}?message={message_id}#message-{message_id}"
    assert hasattr(target, "get_absolute_url")  # can_open_target checked it
    return target.get_absolute_url()
