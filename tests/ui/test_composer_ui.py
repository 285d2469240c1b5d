"""Browser: the composer helps — @ suggestions by full name, unknown names flagged,
the sending state, every error next to the composer, a confirmation after each
action."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feed.mentions import clear_people_cache
from feed.models import Activity, Message, Notification

pytestmark = pytest.mark.browser


def test_mention_autocomplete_highlight_and_unknown_flag(page, login, alice, make_user,
                                                         ticket):  # fmt: skip
    """Typing "@mar" offers Marc Demo; Enter writes @mdemo; the posted note shows a
    highlighted @Marc Demo and Marc is notified; "@nobody" is flagged first."""
    marc = make_user("mdemo", first_name="Marc", last_name="Demo")
    clear_people_cache()
    login(alice)
    page.goto(ticket.get_absolute_url())
    page.click("summary:has-text('Log note')")
    area = page.locator("[data-test=note-form] textarea[name=body]")
    # Idle: no empty progress bar or error box on show.
    expect(page.locator("[data-test=note-form] .upload-progress")).to_be_hidden()
    expect(page.locator("[data-test=note-form] .form-error")).to_be_hidden()
    area.click()
    area.press_sequentially("Please ask @nobody")
    warning = page.locator("[data-test=note-form] .mention-warning")
    expect(warning).to_contain_text("Nobody is called @nobody")
    area.fill("")
    area.press_sequentially("Please check with @mar")
    option = page.locator(".mention-list li", has_text="Marc Demo")
    expect(option).to_be_visible()
    expect(option).to_contain_text("@mdemo")
    # One suggestion per line, under the text.
    assert option.bounding_box()["width"] > area.bounding_box()["width"] * 0.9
    area.press("Enter")
    expect(area).to_have_value("Please check with @mdemo ")
    expect(page.locator(".mention-list")).to_have_count(0)
    expect(warning).to_be_hidden()
    page.locator("[data-test=note-form] button:has-text('Log')").click()
    note = page.locator("article.feed-note", has_text="Please check with")
    expect(note.locator("mark.mention")).to_have_text("@Marc Demo")
    expect(page.locator(".feed-flash")).to_contain_text("Note logged.")
    assert Notification.objects.filter(user=marc, message__kind="note").exists()


def test_errors_sending_state_and_confirmations(page, login, alice, bob, ticket,
                                                settings, tmp_path):  # fmt: skip
    """A 10 MB subject (the server's 400) is told next to the composer; the button
    reads Sending… while the post is on its way, with the upload's progress;
    scheduling and Mark done confirm."""
    login(alice)
    page.goto(ticket.get_absolute_url())
    page.click("summary:has-text('Send message')")
    form = page.locator("[data-test=message-form]")
    form.locator("textarea[name=body]").fill("Hello")
    form.locator("input[name=subject]").evaluate(
        "el => { el.removeAttribute('maxlength'); el.value = 'x'.repeat(10 * 1024 * 1024); }"
    )
    # 10 MB through htmx's FormData takes a while on two busy cores.
    form.locator("button:has-text('Send')").click(timeout=60_000)
    error = form.locator(".form-error")
    expect(error).to_be_visible(timeout=30_000)
    expect(error).to_contain_text("too large")
    assert not Message.objects.filter(kind="email").exists()

    # The button says Sending… and is disabled while the request runs (slowed here).
    form.locator("input[name=subject]").fill("Your printer")
    page.route(
        re.compile(r".*/post/$"),
        lambda route: (page.wait_for_timeout(800), route.continue_()),
    )
    upload = tmp_path / "photos.bin"
    upload.write_bytes(b"\0" * 2_000_000)
    form.locator("input[name=attachments]").set_input_files(str(upload))
    page.evaluate(
        """document.addEventListener("htmx:xhr:progress", () => {
            const bar = document.querySelector("[data-test=message-form] .upload-progress");
            window.__bar = Math.max(window.__bar || 0, bar.value);
            window.__barShown = window.__barShown || !bar.hidden;
        })"""
    )
    button = form.locator("button[type=submit]")
    button.click()
    expect(button).to_have_text("Sending…")
    expect(button).to_be_disabled()
    expect(page.locator(".feed-flash")).to_contain_text("Message queued for")
    page.unroute(re.compile(r".*/post/$"))
    assert Message.objects.filter(kind="email").count() == 1
    assert page.evaluate("window.__barShown") is True  # upload progress was shown
    assert page.evaluate("window.__bar") == 100

    page.click("summary:has-text('Schedule activity')")
    activity = page.locator("[data-test=activity-form]")
    activity.locator("select[name=assignee]").select_option(label="Bob")
    activity.locator("input[name=summary]").fill("Call the customer")
    activity.locator("button:has-text('Schedule')").click()
    expect(page.locator(".feed-flash")).to_contain_text("scheduled for Bob")
    assert Activity.objects.get().assignee == bob
    page.locator(".feed-done summary").first.click()
    page.locator(".feed-done button:has-text('Done')").first.click()
    expect(page.locator(".feed-flash")).to_contain_text(
        "Call the customer marked done."
    )
    assert not Activity.objects.exists()
