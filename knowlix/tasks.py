"""Core Celery tasks."""

from __future__ import annotations

from celery import shared_task

from knowlix import params


@shared_task
def record_heartbeat(token: str) -> None:
    """Store ``token`` as the ``celery.heartbeat`` parameter: proves a worker runs tasks."""
    params.set_param("celery.heartbeat", token)
