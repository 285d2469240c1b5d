"""The daily digest task, run by a real Celery worker over Redis."""

from __future__ import annotations

import time

from django.utils import timezone

from feed import services
from feed.models import ActivityDigest, ActivityType
from feed.tasks import send_activity_digests
from knowlix.models import SystemParameter
from knowlix.tasks import record_heartbeat
from mailservers.models import OutgoingMail


def test_worker_sends_the_digest_once(celery_worker, alice, ticket, prefers_email):
    """The beat task queues alice's digest; a second run does not repeat it."""
    prefers_email(alice)
    services.schedule_activity(
        record=ticket,
        activity_type=ActivityType.objects.get(name="Call"),
        assignee=alice,
        created_by=alice,
        summary="Call Dana",
        due_date=timezone.localdate(),
    )
    send_activity_digests.delay()
    send_activity_digests.delay()
    # The worker has one process and takes tasks in order: once this marker is
    # written, both digest runs are over.
    token = f"digest-{time.time_ns()}"
    record_heartbeat.delay(token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if SystemParameter.objects.filter(key="celery.heartbeat", value=token).exists():
            break
        time.sleep(0.2)
    assert ActivityDigest.objects.get().user == alice
    mail = OutgoingMail.objects.get(subject__startswith="Your activities")
    assert [r.address for r in mail.recipients.all()] == ["alice@example.com"]
    assert b"Call Dana" in bytes(mail.raw)
