"""Browser: the top bar's unread count follows new notifications without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feed import services

pytestmark = pytest.mark.browser


def test_unread_badge_refreshes_without_reload(page, login, bob, ticket):
    """A notice created after page load shows within a minute; reading it clears
    the badge when the tab becomes visible again."""
    page.clock.install()  # the minute between polls passes on demand
    login(bob)
    badge = page.locator("#unread-count")
    assert badge.is_hidden()
    page.evaluate("window.__same_page = true")

    services.notify_users(
        target=ticket, users=[bob], subject="Toner", body_html="<p>Low toner</p>"
    )
    page.clock.run_for(61_000)
    # A locator assertion, not wait_for_function: a string predicate is eval(),
    # which the page's Content-Security-Policy refuses.
    expect(badge).to_have_text("1")
    assert badge.is_visible()

    services.mark_notifications_read(user=bob)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    badge.wait_for(state="hidden")
    assert badge.inner_text() == "0"
    assert page.evaluate("window.__same_page") is True
