"""Celery beat's scheduler with a heartbeat: health checks know beat is alive.

Beat ticks at least every ``CELERY_BEAT_MAX_LOOP_INTERVAL`` seconds; each tick
stamps the ``beat`` row of :class:`knowlix.models.Heartbeat`, and a clean stop marks
it stopped. A database fault is logged and never stops the schedule.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from celery.beat import PersistentScheduler
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from knowlix.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT = "beat"


def record_heartbeat(*, name: str) -> None:
    """Stamp ``name``'s heartbeat now (and clear a previous stop)."""
    Heartbeat.objects.update_or_create(
        name=name,
        defaults={
            "beat_at": timezone.now(),
            "host": socket.gethostname(),
            "stopped_at": None,
        },
    )


def record_stop(*, name: str) -> None:
    """Mark ``name`` as stopped, so health checks fail at once."""
    Heartbeat.objects.filter(name=name).update(stopped_at=timezone.now())


class HeartbeatScheduler(PersistentScheduler):
    """The default (file-backed) scheduler, plus a heartbeat row at every tick."""

    def tick(self, *args: object, **kwargs: object) -> float:
        interval: float = super().tick(*args, **kwargs)
        self._safely(record_heartbeat)
        return interval

    def close(self) -> None:
        super().close()
        self._safely(record_stop)

    @staticmethod
    def _safely(write: Callable[..., None]) -> None:
        close_old_connections()  # beat lives for months; connections do not
        try:
            write(name=BEAT)
        except DatabaseError as exc:
            logger.warning("Beat heartbeat not recorded: %s", exc)
