"""Browser: the Mail flow chart is drawn from the real queue (sent, failed, bounced,
received today), and the Email queue's search works from the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from knowlix import params
from knowlix.users import get_profile
from mailservers.models import OutgoingMail
from mailservers.services import outbox
from mailservers.services.outgoing import (
    MailRecipient,
    mark_recipient_bounced,
    queue_mail,
)
from routing.services import route_incoming_message

pytestmark = pytest.mark.browser


def queued(subject: str, to: str) -> OutgoingMail:
    return queue_mail(
        from_address="a@catchall.test",
        recipients=[MailRecipient(to)],
        subject=subject,
        body_text="Hi",
        send_now=False,
    )


def test_mail_flow_chart_from_real_queue(page, login, admin_user, settings,
                                         smtp_server):  # fmt: skip
    """Two sent (one bounced later), one refused, one received: the chart's bars
    and legend say so, and the queue's search finds the refused one."""
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save()
    first = queued("Welcome", "dana@customer.test")
    queued("Invoice", "eve@customer.test")
    outbox.process_outbox()
    mark_recipient_bounced(
        message_id=first.message_id, address="dana@customer.test", reason="5.1.1 gone"
    )
    smtp_server.reject_next(550, "5.7.1 Refused by policy", stage="rcpt")
    queued("Quote", "zed@customer.test")
    outbox.process_outbox()
    route_incoming_message(
        raw=b"From: x@client.test\r\nTo: y@elsewhere.test\r\nSubject: Hey\r\n"
        b"Message-ID: <ui-flow@client.test>\r\n\r\nHello\r\n",
        source="test",
    )

    login(admin_user)
    page.goto("/")
    page.locator("summary", has_text="Settings").click()
    page.locator(".menu-items a", has_text="Mail flow").click()
    chart = page.locator("[data-test=flow-chart] svg")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 100
    for series, count in (("sent", 1), ("bounced", 1), ("failed", 1), ("received", 1)):
        expect(chart.locator(f"rect[data-series={series}]")).to_have_attribute(
            "data-count", str(count)
        )
        expect(page.locator(f".flow-key[data-series={series}] strong")).to_have_text(
            str(count)
        )
    expect(chart.locator("rect[data-series=deferred]")).to_have_count(0)
    expect(page.locator("[data-test=flow-servers]")).to_contain_text("Default server")
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-mail-flow.png"))
    params.clear_cache()

    page.locator("a.btn", has_text="Email queue").click()
    page.fill("input[name=q]", "zed@")
    page.click("button:has-text('Search')")
    rows = page.locator("table.table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Quote")
    expect(rows.first).to_contain_text("Failed")
