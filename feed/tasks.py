"""Celery tasks of the feed: thin, ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from feed import blob_gc, digests, fanout, scheduled
from feed.services import mailings


@shared_task
def send_activity_digests() -> int:
    """Daily (beat): email each user who prefers email the activities due."""
    return digests.send_activity_digests(today=timezone.localdate())


@shared_task
def collect_unused_blobs() -> int:
    """Daily (beat): delete attachment blobs no attachment references; bytes freed."""
    return blob_gc.collect_unused_blobs().bytes_freed


@shared_task(name="feed.tasks.fan_out_message")
def fan_out_message(message_id: int) -> int:
    """Tell a big post's followers, chunk by chunk (resumes where it stopped)."""
    handled = fanout.fan_out_message(message_id=message_id)
    mailings.mark_sent(message_id=message_id)  # a mailing's post: now all queued
    return handled


@shared_task(name="feed.tasks.send_mailing")
def send_mailing(mailing_id: int) -> None:
    """Subscribe a mailing's audience and post its email (once; see
    ``feed.services.mailings``); a big audience is mailed by ``fan_out_message``."""
    mailings.post_mailing(mailing_id=mailing_id)


@shared_task
def resume_stalled_mailings() -> int:
    """Every minute (beat): a mailing whose task was lost is started again."""
    return mailings.resume_stalled_mailings()


@shared_task
def send_scheduled_messages() -> int:
    """Every minute (beat): post the scheduled emails that are due."""
    return scheduled.send_due_messages()
