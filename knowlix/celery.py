"""The Celery app and its beat schedule.

Tasks stay thin (ids in, one service call); the schedule below is the only place
periodic work is declared.
"""

from __future__ import annotations

import os

from celery import Celery, signals
from celery.schedules import crontab

from knowlix.runtime import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")

app = Celery("knowlix")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Drain the outgoing queue (also triggered right after each post).
    "process-outbox": {"task": "mailservers.tasks.process_outbox", "schedule": 60.0},
    # Hand back the mail of crashed workers (their 30 s claim lease ended, or
    # their process is gone) within a minute; expire mail past its lifetime.
    "recover-stuck-mail": {
        "task": "mailservers.tasks.recover_stuck_mail",
        "schedule": 20.0,
    },
    # Tell admins about outgoing servers down for 15 minutes, and when back.
    "notify-server-outages": {
        "task": "mailservers.tasks.notify_server_outages",
        "schedule": 60.0,
    },
    # Each confirmed incoming server is polled at its own interval; this tick decides.
    "poll-incoming-servers": {
        "task": "mailservers.tasks.poll_due_servers",
        "schedule": 60.0,
    },
    # Emails scheduled with "Send later" that are due.
    "send-scheduled-messages": {
        "task": "feed.tasks.send_scheduled_messages",
        "schedule": 60.0,
    },
    # Mailings whose send task was lost (a worker killed before the post).
    "resume-stalled-mailings": {
        "task": "feed.tasks.resume_stalled_mailings",
        "schedule": 60.0,
    },
    # Daily activity digest for users who prefer email.
    "activity-digest": {
        "task": "feed.tasks.send_activity_digests",
        "schedule": crontab(hour=6, minute=0),
    },
    # Renew OAuth grants unused for a week so refresh tokens never silently expire.
    "keep-oauth-grants-alive": {
        "task": "mailservers.tasks.keep_oauth_grants_alive",
        "schedule": crontab(hour=4, minute=30),
    },
    # Daily DNS re-check of every sending domain.
    "dns-recheck": {
        "task": "dnscheck.tasks.recheck_all_domains",
        "schedule": crontab(hour=3, minute=0),
    },
    # Delete attachment files no attachment references (older than a day).
    "gc-blobs": {
        "task": "feed.tasks.collect_unused_blobs",
        "schedule": crontab(hour=2, minute=30),
    },
}


@signals.worker_process_init.connect  # each prefork child, once started
@signals.worker_ready.connect  # the main process (solo and threads pools run tasks here)
def _freeze_startup_heap(**_kwargs: object) -> None:
    """See knowlix.runtime: start-up objects are never walked by the collector."""
    freeze_startup_heap()
