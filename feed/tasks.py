"""Celery tasks of the feed: thin, ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from feed import blob_gc, digests, scheduled


@shared_task
def send_activity_digests() -> int:
    """Daily (beat): email each user who prefers email the activities due."""
    return digests.send_activity_digests(today=timezone.localdate())


@shared_task
def collect_unused_blobs() -> int:
    """Daily (beat): delete attachment blobs no attachment references; bytes freed."""
    return blob_gc.collect_unused_blobs().bytes_freed


@shared_task
def send_scheduled_messages() -> int:
    """Every minute (beat): post the scheduled emails that are due."""
    return scheduled.send_due_messages()
