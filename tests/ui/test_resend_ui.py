"""Browser: a recipient whose mail was refused is resent from the record's feed."""

from __future__ import annotations

import pytest

from feed import services
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.browser


def test_failed_recipient_resent_from_the_feed(
    page, login, alice, ticket, settings, smtp_server, tmp_path
):
    """Dana's 550 shows *failed* with a Resend button; Resend queues a new mail to
    her alone, which leaves; the feed then shows *sent*."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    smtp_server.fail_rcpt("dana@customer.example", 550, "5.1.1 mailbox full", times=1)
    services.post_message(
        record=ticket, kind="email", author=alice, body_html="<p>Your invoice</p>"
    )
    process_outbox()
    assert OutgoingRecipient.objects.get().state == "failed"

    login(alice)
    page.goto(ticket.get_absolute_url())
    article = page.locator("article.feed-email", has_text="Your invoice")
    article.wait_for()
    recipients = article.locator(".feed-recipients")
    assert "failed" in recipients.inner_text()
    assert "mailbox full" in recipients.inner_text()
    page.evaluate("window.__same_page = true")
    recipients.locator("[data-test=resend]").click()
    page.locator("article.feed-email .feed-recipients", has_text="queued").wait_for()
    assert page.evaluate("window.__same_page") is True  # an htmx swap
    assert page.locator("article.feed-email [data-test=resend]").count() == 0

    process_outbox()
    assert [r.rcpt_tos for r in smtp_server.received] == [["dana@customer.example"]]
    page.reload()
    sent = page.locator("article.feed-email .feed-recipients", has_text="sent")
    sent.wait_for()
    rows = OutgoingRecipient.objects.order_by("id")
    assert [r.state for r in rows] == ["failed", "sent"]
