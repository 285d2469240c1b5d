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
def queued(monkeypatch):
    """Collects what the feed hands to outgoing mail: (message, addresses, for_users)."""
    from feed import delivery

    calls: list[tuple] = []

    def fake(*, message, addressees, for_users):
        if addressees:
            calls.append((message, sorted(a.address for a in addressees), for_users))

    monkeypatch.setattr(delivery, "queue_message_mail", fake)
    return calls
