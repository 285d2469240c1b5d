"""Browser: the whole loop without a real mail account — send from a ticket, read it
in the Local mailbox, reply as the customer, see the reply threaded on the ticket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feed.models import Message
from knowlix import params
from knowlix.celery import app
from knowlix.users import get_profile
from mailservers.models import CaughtMail

pytestmark = pytest.mark.browser


@pytest.fixture
def eager_celery() -> Iterator[None]:
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def catchall(db) -> Iterator[str]:  # noqa: ANN001
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    yield "catchall.test"
    params.clear_cache()


def test_reply_from_the_local_mailbox_lands_under_the_original(
    page, login, admin_user, ticket, catchall, mailcatcher, eager_celery, settings
):  # noqa: ANN001
    """Send, open it in the Local mailbox, reply as Dana, read it threaded."""
    settings.MEDIA_ROOT = settings.VAR_DIR / "media-localmailbox-browser"
    receipt = settings.VAR_DIR / "media-localmailbox-browser" / "serial-number.txt"
    receipt.parent.mkdir(parents=True, exist_ok=True)
    receipt.write_bytes(b"SN 4711\n")
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    login(admin_user)

    # 1. Send from the ticket: the mail is caught (it is for the customer, not us).
    page.goto(ticket.get_absolute_url())
    page.locator("#feed-panel").wait_for()
    page.click("summary:has-text('Send message')")
    form = page.locator("[data-test=message-form]")
    form.locator("input[name=subject]").fill("Your printer")
    form.locator("textarea[name=body]").fill("A technician comes at nine.")
    form.locator("button:has-text('Send')").click()
    page.locator("article.feed-email", has_text="A technician comes").wait_for()
    caught = CaughtMail.objects.get()
    assert caught.rcpt_tos == ["dana@customer.example"]
    assert caught.routing_outcome == ""
    original = Message.objects.get(kind="email")

    # 2. Open it in the Local mailbox and reply as the customer, with a file.
    page.click("summary:has-text('Settings')")
    page.click("text=Local mailbox")
    page.click("a:has-text('Your printer')")
    page.locator("h2", has_text="Reply as Dana Customer").wait_for()
    reply_form = page.locator("[data-test=reply-form]")
    reply_form.locator("textarea[name=body]").fill("Nine is fine, thanks.")
    reply_form.locator("input[name=attachment]").set_input_files(str(receipt))
    reply_form.locator("button:has-text('Send reply')").click()
    outcome = page.locator("[data-test=reply-outcome]")
    outcome.locator(".badge", has_text="routed").wait_for()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-localmailbox-reply.png"))

    # 3. The link opens the ticket at the reply, threaded under the original.
    outcome.locator("a", has_text=str(ticket)).click()
    reply = Message.objects.get(parent=original)
    article = page.locator(f"#message-{reply.pk}")
    article.wait_for()
    assert "In reply to" in article.locator(".feed-reply-to").inner_text()
    assert "Nine is fine, thanks." in article.inner_text()
    assert "serial-number.txt" in article.inner_text()
    assert reply.content_object == ticket
    assert list(reply.attachments.values_list("filename", flat=True)) == [
        "serial-number.txt"
    ]
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-localmailbox-thread.png"),
        full_page=True,
    )
