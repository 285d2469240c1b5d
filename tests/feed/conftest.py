"""Feed test helpers (personas and records come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from knowlix.users import get_profile


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploaded files go to a temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def prefers_email():
    """``prefers_email(user)``: switch the user's notifications to email."""

    def switch(user):
        profile = get_profile(user)
        profile.notify_by = profile.NotifyBy.EMAIL
        profile.save(update_fields=["notify_by"])
        return user

    return switch


@pytest.fixture
def queued(db):
    """``queued()``: the queued mail as (message, sorted addresses, for_users)."""
    from mailservers.models import OutgoingMail

    def rows():
        result = []
        for mail in OutgoingMail.objects.order_by("id").prefetch_related(
            "recipients__message_recipient"
        ):
            recipients = list(mail.recipients.all())
            for_users = any(
                r.message_recipient and r.message_recipient.user_id for r in recipients
            )
            addresses = sorted(r.address for r in recipients)
            result.append((mail.feed_message, addresses, for_users))
        return result

    return rows
