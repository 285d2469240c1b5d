"""Health checks of the processes around the web app (django-health-check).

The endpoints are wired in ``knowlix.urls``: ``/health/`` runs every check, and
``/health/web/``, ``/health/worker/``, ``/health/beat/`` the ones each compose
service's healthcheck needs. Messages name the failing part, never a secret.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from knowlix.beat import BEAT
from knowlix.celery import app
from knowlix.models import Heartbeat


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis, or the embedded one)."""

    def run(self) -> None:
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:  # kombu raises the transport's own errors
            raise ServiceUnavailable(
                f"Broker unreachable: {type(exc).__name__}"
            ) from exc


@dataclasses.dataclass
class Beat(HealthCheck):
    """Celery beat ticked recently (its heartbeat row, see ``knowlix.beat``)."""

    def run(self) -> None:
        try:
            beat = Heartbeat.objects.filter(name=BEAT).first()
        except DatabaseError as exc:
            raise ServiceUnavailable("Database unreachable") from exc
        if beat is None:
            raise ServiceUnavailable("Beat has never run")
        if beat.stopped_at and beat.stopped_at >= beat.beat_at:
            raise ServiceUnavailable(f"Beat stopped at {beat.stopped_at:%H:%M:%S}")
        max_age = dt.timedelta(seconds=settings.KNOWLIX_HEALTH_BEAT_MAX_AGE)
        age = timezone.now() - beat.beat_at
        if age > max_age:
            raise ServiceUnavailable(f"Beat silent for {int(age.total_seconds())} s")
