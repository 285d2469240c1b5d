"""Which outgoing servers are down (Postfix's dead-destination cache, shared by all
workers through ``OutgoingServerHealth``).

A connection-level failure (refused, timed out, 421 greeting, TLS, authentication)
is the server's, not the mail's: ``mark_down`` records it with exponential backoff,
and the drain leaves that server's mail alone until ``probe_at``, when one batch is
tried again (the probe). The mail's attempts are untouched; only the queue lifetime
ends its wait. ``mark_up`` clears the outage when a connection opens again.
Notices to admins are sent by the layer above (``outgoing_notify``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from mailservers.models import OutgoingServer, OutgoingServerHealth

Health = OutgoingServerHealth
PROBE_FIRST = 60.0  # seconds until the first probe; doubles with each failure
PROBE_CAP = 1800.0  # then every 30 minutes at most


def server_key(server_id: int | None) -> str:
    return "default" if server_id is None else str(server_id)


def probe_delay(failures: int) -> timedelta:
    return timedelta(seconds=min(PROBE_FIRST * 2 ** max(failures - 1, 0), PROBE_CAP))


def waiting_keys(now: datetime) -> set[str]:
    """Servers that are down and not yet due for a probe."""
    rows = Health.objects.filter(down_since__isnull=False, probe_at__gt=now)
    return set(rows.values_list("key", flat=True))


def is_down(server_id: int | None) -> bool:
    return Health.objects.filter(
        key=server_key(server_id), down_since__isnull=False
    ).exists()


def mark_down(server: OutgoingServer | None, reason: str) -> datetime:
    """Record a failed connection; returns when the server will be probed."""
    now = timezone.now()
    key = server_key(server.pk if server else None)
    label = str(server) if server else _("Default server")
    for _attempt in range(2):  # two workers may create the row at once
        try:
            with transaction.atomic():
                row, _created = Health.objects.select_for_update().get_or_create(
                    key=key, defaults={"server": server, "label": label[:200]}
                )
                if row.down_since is None:
                    row.down_since, row.failures = now, 0
                    # Down again before the "back" notice went: one outage goes on.
                    row.back_notice_due = False
                row.failures += 1
                row.probe_at = now + probe_delay(row.failures)
                row.label = label[:200]
                row.last_error, row.last_error_at = reason[:2000], now
                row.save()
                return row.probe_at
        except IntegrityError:
            continue
    return now + probe_delay(1)


def mark_up(server_id: int | None) -> None:
    """A connection opened: the server is up (one UPDATE; nothing if it was up)."""
    Health.objects.filter(key=server_key(server_id), down_since__isnull=False).update(
        down_since=None,
        probe_at=None,
        failures=0,
        back_at=timezone.now(),
        back_notice_due=F("down_notified"),
        down_notified=False,
    )
