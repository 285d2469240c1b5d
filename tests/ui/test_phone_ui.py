"""Browser at a phone's width (390 px): every page the menus and lists lead to fits
the screen (no horizontal scrolling), the app menu stays reachable, the record
page's feed and composer fit, and no raw "---------" choice shows anywhere."""

from __future__ import annotations

from collections import deque
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import expect

from feed import services
from feed.models import ActivityType, Message
from knowlix import params
from knowlix.models import Ticket
from knowlix.users import get_profile

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# Not pages: downloads, raw mail, sign-outs, OAuth hops to a provider, actions.
SKIP = ("logout", "/raw/", "download=", "/files/", "/oauth/", "/admin/", "/static/")
MAX_PAGES = 80


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.fixture
def demo_admin(db) -> User:
    params.clear_cache()
    with open("/dev/null", "w") as devnull:  # noqa: PTH123
        call_command("demo", stdout=devnull)
    admin = User.objects.get(username="admin")
    admin.set_password("pw-admin")
    admin.save()
    profile = get_profile(admin)
    profile.developer_mode = True
    profile.save()
    ticket = Ticket.objects.order_by("pk").first()
    assert ticket is not None
    long_word = "x" * 300
    services.post_message(
        record=ticket,
        kind=Message.Kind.NOTE,
        author=admin,
        body_html=f"<p>A long unbroken line {long_word} and @marc</p>",
    )
    services.schedule_activity(
        record=ticket,
        activity_type=ActivityType.objects.get(name="Call"),
        assignee=admin,
        created_by=admin,
        summary="Call the customer back about the broken chair",
    )
    yield admin
    params.clear_cache()


def test_every_page_fits_a_phone(browser, live_server, demo_admin):
    """Crawl every page linked from the top bar, the menus and the lists as an admin
    in developer mode: none is wider than the 390 px screen."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    assert overflow(page) <= PHONE["width"]
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "pw-admin")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)

    # The app menu is there and usable on a phone.
    helpdesk = page.locator("nav.apps a", has_text="Helpdesk")
    expect(helpdesk).to_be_visible()
    helpdesk.click()
    page.wait_for_url("**/helpdesk/**")

    seen: set[str] = set()
    queue = deque(["/"])
    wide: list[tuple[str, int]] = []
    dashes: list[str] = []
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = page.goto(path)
        assert response is not None and response.status < 400, (path, response)
        page.wait_for_load_state("load")
        if overflow(page) > PHONE["width"]:
            wide.append((path, overflow(page)))
        if "---------" in page.content():
            dashes.append(path)
        for href in page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)"):
            parts = urlsplit(href)
            if parts.netloc != urlsplit(live_server.url).netloc:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if any(s in target for s in SKIP) or target in seen:
                continue
            # One page of each list is enough: skip further pages of the same list.
            if "page=" in parts.query and parts.path in seen:
                continue
            queue.append(target)
    assert len(seen) >= 30, sorted(seen)
    assert wide == [], wide
    assert dashes == [], dashes
    context.close()


def test_record_feed_and_composer_fit_a_phone(browser, live_server, demo_admin):
    """A ticket with its feed: each composer tab open in turn still fits, and the
    app menu stays visible at the top."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "pw-admin")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    ticket = Ticket.objects.order_by("pk").first()
    page.goto(ticket.get_absolute_url())
    for tab in ("Send message", "Log note", "Schedule activity"):
        page.click(f"summary:has-text('{tab}')")
        assert overflow(page) <= PHONE["width"], tab
    page.locator(".feed-follower-list > summary").click()
    assert overflow(page) <= PHONE["width"]
    expect(page.locator("nav.apps")).to_be_visible()
    page.screenshot(path="var/screenshot-phone-ticket.png", full_page=True)
    context.close()
