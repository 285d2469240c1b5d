"""Tell the admins (inbox) when an outgoing server has been down for a while, and
when it is back.

The layer above the queue and the feed (it posts through
``feed.services.notify_users``): the queue only records outages (``outbox_health``);
beat calls ``notify_server_outages`` every minute. Each notice is sent once, in the transaction that flips its flag.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed.services import notify_users
from mailservers.models import OutgoingServerHealth

DOWN_NOTICE_AFTER = timedelta(minutes=15)
Health = OutgoingServerHealth


def _admins() -> QuerySet[User]:
    return get_user_model().objects.filter(
        Q(is_active=True) & (Q(is_staff=True) | Q(is_superuser=True))
    )


def _when(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else ""


def notify_server_outages() -> int:
    """Send the due down/back notices; returns how many were sent."""
    sent = 0
    cutoff = timezone.now() - DOWN_NOTICE_AFTER
    down = Health.objects.filter(
        down_since__lte=cutoff, down_notified=False
    ).values_list("pk", flat=True)
    for pk in down:
        with transaction.atomic():
            row = Health.objects.select_for_update().get(pk=pk)
            if row.down_since is None or row.down_notified:
                continue
            row.down_notified = True
            row.save(update_fields=["down_notified"])
            subject = _("Outgoing mail server %(name)s is down") % {"name": row.label}
            body = (
                f"<p>{escape(_('Knowlix cannot connect to'))} "
                f"<strong>{escape(row.label)}</strong> "
                f"{escape(_('since %(when)s') % {'when': _when(row.down_since)})}: "
                f"{escape(row.last_error)}</p><p>"
                + escape(
                    _(
                        "Its mail waits in the queue and goes out by itself when "
                        "the server answers again (it is tried every few minutes). "
                        "Mail still waiting after the queue lifetime expires."
                    )
                )
                + "</p>"
            )
            notify_users(target=row, users=_admins(), subject=subject, body_html=body)
            sent += 1
    for pk in Health.objects.filter(back_notice_due=True).values_list("pk", flat=True):
        with transaction.atomic():
            row = Health.objects.select_for_update().get(pk=pk)
            if not row.back_notice_due:
                continue
            row.back_notice_due = False
            row.save(update_fields=["back_notice_due"])
            subject = _("Outgoing mail server %(name)s is back") % {"name": row.label}
            body = (
                "<p>"
                + escape(
                    _(
                        "%(name)s answers again since %(when)s: the waiting mail is sent."
                    )
                    % {"name": row.label, "when": _when(row.back_at)}
                )
                + "</p>"
            )
            notify_users(target=row, users=_admins(), subject=subject, body_html=body)
            sent += 1
    return sent
