"""The top bar's unread count endpoint (polled by static/js/unread.js)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from feed import services
from feed.models import Notification

pytestmark = pytest.mark.django_db

URL = "feed:unread-count"


def notify(ticket, *users, subject="Printer status"):
    return services.notify_users(
        target=ticket, users=list(users), subject=subject, body_html="<p>Check</p>"
    )


def test_anonymous_is_sent_to_login(client):
    """No session: the login page, never a count."""
    response = client.get(reverse(URL))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_counts_only_the_users_own_unread_notifications(client, ticket, alice, bob):
    """Bob's count ignores alice's notices and the ones he has read."""
    notify(ticket, bob, alice, subject="first")
    notify(ticket, bob, subject="second")
    notify(ticket, alice, subject="alice only")
    Notification.objects.filter(user=bob, message__subject="first").update(is_read=True)
    client.force_login(bob)

    response = client.get(reverse(URL))

    assert response.status_code == 200
    assert response.json() == {"unread": 1}
    assert "no-cache" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_count_follows_mark_all_read(client, ticket, bob):
    """After "mark all read" the next poll answers zero."""
    notify(ticket, bob)
    client.force_login(bob)
    assert client.get(reverse(URL)).json() == {"unread": 1}

    client.post(reverse("feed:inbox-read-all"))

    assert client.get(reverse(URL)).json() == {"unread": 0}


def test_only_get_is_allowed(client, bob):
    """POST is refused (405): the endpoint only reads."""
    client.force_login(bob)
    assert client.post(reverse(URL)).status_code == 405


def test_page_renders_badge_hidden_at_zero_with_poll_url(client, bob):
    """The badge is always on the page (hidden at zero) so the script can fill it."""
    client.force_login(bob)
    page = client.get(reverse("feed:inbox")).content.decode()
    assert f'data-unread-url="{reverse(URL)}"' in page
    assert re.search(
        r'<span class="badge badge-err"\s+id="unread-count"\s+hidden>0<', page
    )
    assert "js/unread.js" in page
