"""Health check of the outgoing queue: mail due long ago and still unsent means
no worker is draining it (or every send hangs), or its server is down: the report
says which, so the operator looks at the workers or at the mail server."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from mailservers.models import OutgoingMail, OutgoingServerHealth


@dataclasses.dataclass
class Outbox(HealthCheck):
    """No mail waits past ``KNOWLIX_HEALTH_OUTBOX_STALL`` seconds after it was due,
    and none sits in *sending* that long (a worker died holding it)."""

    def run(self) -> None:
        limit = timezone.now() - dt.timedelta(
            seconds=settings.KNOWLIX_HEALTH_OUTBOX_STALL
        )
        State = OutgoingMail.State
        stalled = Q(
            state__in=[State.QUEUED, State.DEFERRED], next_attempt_at__lt=limit
        ) | Q(state=State.SENDING, claimed_at__lt=limit)
        try:
            overdue: dict[int | None, int] = dict(
                OutgoingMail.objects.filter(stalled)
                .order_by()
                .values("server_id")
                .annotate(count=Count("id"))
                .values_list("server_id", "count")
            )
            outages = list(
                OutgoingServerHealth.objects.filter(down_since__isnull=False)
            )
        except DatabaseError as exc:
            raise ServiceUnavailable("Database unreachable") from exc
        if not overdue:
            return
        reasons = []
        for outage in outages:
            waiting = overdue.pop(outage.server_id, 0)
            if waiting:
                reasons.append(
                    f"{waiting} mail waiting for {outage.label}, down since "
                    f"{_stamp(outage.down_since)} ({outage.last_error[:200]}), "
                    f"next probe {_stamp(outage.probe_at)}"
                )
        others = sum(overdue.values())
        if others:
            reasons.insert(
                0,
                f"{others} mail overdue by more than "
                f"{settings.KNOWLIX_HEALTH_OUTBOX_STALL} s (is a worker draining?)",
            )
        raise ServiceUnavailable("Outgoing queue stalled: " + "; ".join(reasons))


def _stamp(moment: dt.datetime | None) -> str:
    if moment is None:
        return "not planned"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")
