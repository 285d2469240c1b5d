"""Browser: a mail to helpdesk@ reaches a team member without a reload, and a
second browser on a ticket sees a message, its delivery state and the customer's
reply arrive by themselves."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feed import services
from feed.models import Message
from knowlix import params
from knowlix.models import Team, Ticket
from mailservers.models import OutgoingMail
from mailservers.services import outbox
from routing.models import Alias
from routing.services import route_incoming_message
from tests.fixtures_bulk import make_messages
from tests.routing.conftest import ensure_module_aliases

pytestmark = pytest.mark.browser

# Polls: the feed every 3 s, the inbox badge every 5 s; a margin for 2 busy cores.
LIVE_MS = 12_000


@pytest.fixture
def catchall(db):
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    yield "example.com"
    params.clear_cache()


def test_mail_to_helpdesk_shows_in_a_team_members_inbox(page, login, bob, catchall):
    """bob is in the Helpdesk team: the badge counts the new ticket's mail without
    a reload, and his inbox lists it."""
    ensure_module_aliases()
    team = Team.objects.create(name="Helpdesk")
    team.members.add(bob)
    Alias.objects.filter(name="helpdesk").update(team=team)

    login(bob)
    page.goto("/")
    page.evaluate("window.__same_page = true")
    badge = page.locator("#unread-count")
    expect(badge).to_be_hidden()
    raw = (
        b"From: Ready Mat <mat@ready.example>\r\nTo: helpdesk@example.com\r\n"
        b"Subject: Scanner jams every morning\r\nMessage-ID: <jam-1@ready.example>\r\n"
        b"\r\nThe scanner jams at 9 every day.\r\n"
    )
    assert route_incoming_message(raw=raw, source="test").outcome == "routed"
    expect(badge).to_be_visible(timeout=LIVE_MS)
    assert int(badge.inner_text()) >= 1
    assert page.evaluate("window.__same_page") is True
    page.locator("a.inbox-link").click()
    expect(page.locator("main")).to_contain_text("Scanner jams every morning")


def test_second_browser_sees_message_delivery_state_and_reply(
    browser, live_server, page, login, alice, bob, ticket, settings, smtp_server,
    catchall,
):  # fmt: skip
    """alice keeps the ticket open; bob sends from his browser; alice sees the
    message, a deferral's reason, "sent", then two replies on one line, no reload."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    login(alice)
    page.goto(ticket.get_absolute_url())
    page.evaluate("window.__same_page = true")

    other = browser.new_context(base_url=live_server.url)
    other.set_default_timeout(15_000)
    bob_page = other.new_page()
    bob_page.goto("/login/")
    bob_page.fill("input[name=username]", "bob")
    bob_page.fill("input[name=password]", "pw-bob")
    bob_page.click("button[type=submit]")
    bob_page.wait_for_url(lambda url: "/login/" not in url)
    bob_page.goto(ticket.get_absolute_url())
    bob_page.click("summary:has-text('Send message')")
    form = bob_page.locator("[data-test=message-form]")
    form.locator("input[name=subject]").fill("Replacement on its way")
    form.locator("textarea[name=body]").fill("A new printer ships today.")
    form.locator("button:has-text('Send')").click()
    bob_page.locator("article.feed-email", has_text="A new printer ships").wait_for()

    card = page.locator("article.feed-email", has_text="A new printer ships today.")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".feed-recipients")).to_contain_text("queued")

    smtp_server.reject_next(451, "4.7.1 Greylisted, come back later")
    outbox.process_outbox()
    assert OutgoingMail.objects.get().state == OutgoingMail.State.DEFERRED
    expect(card.locator(".feed-recipients")).to_contain_text(
        re.compile(r"deferred.*Greylisted", re.S), timeout=LIVE_MS
    )
    OutgoingMail.objects.update(next_attempt_at=OutgoingMail.objects.get().created_at)
    outbox.process_outbox()
    expect(card.locator(".feed-recipients")).to_contain_text("sent", timeout=LIVE_MS)

    sent = Message.objects.get(kind="email")
    reply = (
        "From: Dana Customer <dana@customer.example>\r\n"
        f"To: reply+{ticket.reply_token}@example.com\r\n"
        "Subject: Re: Replacement on its way\r\n"
        "Message-ID: <dana-thanks@customer.example>\r\n"
        f"In-Reply-To: {sent.message_id}\r\n\r\nThank you, got it!\r\n"
    ).encode()
    assert route_incoming_message(raw=reply, source="test").outcome == "routed"
    answer = page.locator("article.feed-email", has_text="Thank you, got it!")
    expect(answer).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".feed-replies")).to_contain_text("1 reply from Dana Customer")
    # A second reply from the same person: one line, her name once.
    again = reply.replace(b"dana-thanks@", b"dana-again@").replace(
        b"Thank you, got it!", b"It works now."
    )
    assert route_incoming_message(raw=again, source="test").outcome == "routed"
    expect(page.locator("article.feed-email", has_text="It works now.")).to_be_visible(
        timeout=LIVE_MS
    )
    expect(card.locator(".feed-replies")).to_have_text(
        re.compile(r"^\W*2 replies from\s+Dana Customer\s*$")
    )
    assert page.evaluate("window.__same_page") is True
    assert Ticket.objects.count() == 1
    other.close()


def test_live_feed_keeps_older_pages_loaded_by_hand(page, login, alice, bob, ticket,
                                                    contact, settings, tmp_path):  # fmt: skip
    """With "Load older messages" clicked, a new note still shows on top and the
    older page stays."""
    settings.MEDIA_ROOT = tmp_path / "media"
    make_messages(record=ticket, author=alice, contact=contact, count=45)
    login(alice)
    page.goto(ticket.get_absolute_url())
    articles = page.locator("#feed-messages article.feed-message")
    expect(articles).to_have_count(30)
    page.click("text=Load older messages")
    expect(articles).to_have_count(46)
    services.post_message(
        record=ticket, kind=Message.Kind.NOTE, author=bob, body_html="<p>Fresh news</p>"
    )
    expect(articles.first).to_contain_text("Fresh news", timeout=LIVE_MS)
    expect(articles).to_have_count(47)


def test_relative_dates_stay_true_on_an_open_page(page, login, alice, ticket):
    """ "just now" on a page left open becomes "3 minutes ago" three minutes later,
    the exact time still in its title."""
    page.clock.install()
    login(alice)
    page.goto(ticket.get_absolute_url())
    when = page.locator("#feed-messages time[data-relative]").first
    expect(when).to_have_text("just now")
    title = when.get_attribute("title")
    page.clock.run_for(3 * 60_000 + 1_000)
    expect(when).to_have_text("3\xa0minutes ago")
    assert when.get_attribute("title") == title
