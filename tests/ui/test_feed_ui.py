"""Browser: the feed of a ticket — message with files, note with a mention,
an activity scheduled and done, and the mentioned user's inbox."""

from __future__ import annotations

import re

import pytest

from feed.models import Activity, Message, Notification

pytestmark = pytest.mark.browser


def test_feed_flow_through_the_browser(
    page, login, alice, bob, ticket, settings, tmp_path
):
    """Send, note, schedule, done — then bob's inbox opens the note."""
    settings.MEDIA_ROOT = tmp_path / "media"
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(b"%PDF-1.4 quote")
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")

    login(alice)
    page.goto(ticket.get_absolute_url())
    panel = page.locator("#feed-panel")
    panel.wait_for()

    # Send message with two attachments, without a page reload (htmx swap).
    page.evaluate("window.__same_page = true")
    page.click("summary:has-text('Send message')")
    form = page.locator("[data-test=message-form]")
    form.locator("input[name=subject]").fill("Your quote")
    form.locator("textarea[name=body]").fill("Please find the quote attached.")
    form.locator("input[name=attachments]").set_input_files([str(quote), str(photo)])
    # Above the size limit: the composer comes back with the reason, nothing posted.
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 10
    form.locator("button:has-text('Send')").click()
    error = page.locator("[data-test=message-form] .errorlist")
    error.wait_for()
    assert "quote.pdf is 14\xa0bytes; files may be at most 10\xa0bytes." in (
        error.inner_text()
    )
    assert not Message.objects.filter(kind="email").exists()
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
    form = page.locator("[data-test=message-form]")
    assert form.locator("textarea[name=body]").input_value().startswith("Please")
    form.locator("input[name=attachments]").set_input_files([str(quote), str(photo)])
    form.locator("button:has-text('Send')").click()
    sent = page.locator(
        "article.feed-email", has_text="Please find the quote attached."
    )
    sent.wait_for()
    assert page.evaluate("window.__same_page") is True
    assert "quote.pdf" in sent.inner_text() and "photo.png" in sent.inner_text()
    assert "queued" in sent.locator(".feed-recipients").inner_text()
    message = Message.objects.get(kind="email")
    assert sorted(message.attachments.values_list("filename", flat=True)) == [
        "photo.png",
        "quote.pdf",
    ]

    # Log a note mentioning bob.
    page.click("summary:has-text('Log note')")
    note_form = page.locator("[data-test=note-form]")
    note_form.locator("textarea[name=body]").fill("@bob can you check the toner?")
    note_form.locator("button:has-text('Log')").click()
    page.locator("article.feed-note", has_text="can you check the toner").wait_for()

    # Schedule a call, then mark it done with feedback.
    page.click("summary:has-text('Schedule activity')")
    act_form = page.locator("[data-test=activity-form]")
    act_form.locator("select[name=activity_type]").select_option(label="Call")
    act_form.locator("input[name=summary]").fill("Call Dana back")
    act_form.locator("button:has-text('Schedule')").click()
    activity = page.locator(".feed-activity", has_text="Call Dana back")
    activity.wait_for()
    assert Activity.objects.filter(summary="Call Dana back").exists()
    activity.locator("summary:has-text('Mark done')").click()
    activity.locator("textarea[name=feedback]").fill("Dana will order toner.")
    activity.locator("button:has-text('Done')").click()
    page.locator("article", has_text="Dana will order toner.").wait_for()
    assert not Activity.objects.exists()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-feed.png"), full_page=True)

    # Bob sees the mention in his inbox and opens the record at the note.
    page.context.clear_cookies()
    login(bob)
    assert page.locator("#unread-count").inner_text().strip() == "1"
    page.click("a.inbox-link")
    item = page.locator(".inbox-item", has_text="can you check the toner")
    item.wait_for()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-inbox.png"), full_page=True)
    item.locator("a.inbox-open").click()
    note = Message.objects.get(kind="note")
    page.wait_for_url(re.compile(rf"#message-{note.pk}$"))
    page.locator(f"#message-{note.pk}").wait_for()
    page.click("summary:has-text('followers')")
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-followers.png"))
    assert Notification.objects.get(user=bob, message=note).is_read


def test_older_messages_load_in_place(page, login, alice, ticket):
    """ "Load older messages" appends the next page without leaving the record."""
    from feed import services

    for i in range(34):
        services.post_message(
            record=ticket, kind="note", author=alice, body_html=f"n{i}"
        )
    login(alice)
    page.goto(ticket.get_absolute_url())
    assert page.locator("article.feed-message").count() == 30
    page.click("text=Load older messages")
    page.locator("article", has_text="Helpdesk ticket created").wait_for()
    assert page.locator("article.feed-message").count() == 35
    assert page.locator("text=Load older messages").count() == 0
