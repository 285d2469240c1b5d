"""The daily activity digest: each user who prefers email hears what is due.

Exactly once per user and day: the ``ActivityDigest`` row is created in the same
transaction as the queued mail, so a second run (or a retried task) skips the user.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from feed import selectors
from feed.models import ActivityDigest
from knowlix import params
from knowlix.access import can_view_record
from knowlix.users import get_profile
from mailservers.errors import MailServerError
from mailservers.services.outgoing import MailRecipient, queue_mail

logger = logging.getLogger(__name__)


def send_activity_digests(*, today: dt.date) -> int:
    """Queue one digest per user who prefers email and has something due; count them."""
    by_user = selectors.due_activities_by_user(today=today)
    users = get_user_model().objects.in_bulk(list(by_user))
    sent = 0
    for user_id, activities in by_user.items():
        user = users[user_id]
        if not (user.email and get_profile(user).prefers_email):
            continue
        activities = [
            a
            for a in activities
            if a.linked_record is not None and can_view_record(user, a.linked_record)
        ]
        if not activities:
            continue
        context = {
            "user": user,
            "activities": activities,
            "today": today,
            "base_url": settings.KNOWLIX_BASE_URL.rstrip("/"),
        }
        subject = render_to_string("emails/activity_digest/subject.txt", context)
        try:
            with transaction.atomic():
                ActivityDigest.objects.create(
                    user=user, day=today, activity_count=len(activities)
                )
                queue_mail(
                    from_address=params.default_from_address(),
                    from_name="Knowlix",
                    recipients=[
                        MailRecipient(address=user.email, name=user.get_full_name())
                    ],
                    subject=" ".join(subject.split()),
                    body_text=render_to_string(
                        "emails/activity_digest/body.txt", context
                    ),
                    body_html=render_to_string(
                        "emails/activity_digest/body.html", context
                    ),
                    auto_submitted=True,
                )
        except IntegrityError:
            continue  # already sent today
        except MailServerError as exc:
            logger.warning("activity digest for user %s not queued: %s", user_id, exc)
            continue
        sent += 1
    return sent
