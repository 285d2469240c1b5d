"""Health check of the outgoing queue: mail due long ago and still unsent means
no worker is draining it (or every send hangs)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from mailservers.models import OutgoingMail


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
            count = OutgoingMail.objects.filter(stalled).count()
        except DatabaseError as exc:
            raise ServiceUnavailable("Database unreachable") from exc
        if count:
            raise ServiceUnavailable(
                f"Outgoing queue stalled: {count} mail overdue by more than "
                f"{settings.KNOWLIX_HEALTH_OUTBOX_STALL} s"
            )
