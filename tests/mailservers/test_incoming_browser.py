"""Browser: configure an IMAP server, test it, fetch, and find the new ticket."""

from __future__ import annotations

import pytest

from knowlix.celery import app
from knowlix.models import Ticket
from knowlix.users import get_profile
from mailservers.models import IncomingServer

pytestmark = pytest.mark.browser

REQUEST = (
    b"From: Dana Customer <dana@customer.example>\r\n"
    b"To: support@acme-mailbox.example\r\n"
    b"Subject: Scanner jams on page two\r\n"
    b"Message-ID: <scanner-1@customer.example>\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
    b"\r\n"
    b"It jams every time.\r\n"
)


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_configure_test_fetch_and_see_ticket(
    page, login, admin_user, dovecot_user, settings, test_ca, eager_celery
):
    """The whole incoming flow in Chromium, then a wrong password shown with its reason."""
    settings.KNOWLIX_MAIL_CA_FILE = str(test_ca.ca_path)
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    dovecot_user.append(REQUEST)
    login(admin_user)
    page.click("summary:has-text('Settings')")
    page.click("text=Incoming Mail Servers")
    page.click("text=New server")
    page.fill("input[name=name]", "Support mailbox")
    page.select_option("select[name=kind]", "imap")
    page.fill("input[name=host]", dovecot_user.server.host)
    page.fill("input[name=port]", str(dovecot_user.server.imaps_port))
    page.select_option("select[name=security]", "ssl")
    page.fill("input[name=username]", dovecot_user.username)
    page.fill("input[name=password]", dovecot_user.password)
    page.select_option("select[name=default_action]", "knowlix.ticket")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Support mailbox')")
    assert "Draft" in page.locator(".server-state").inner_text()

    page.click("#test-connection")
    page.wait_for_selector("text=Connection OK")
    assert "Confirmed" in page.locator(".server-state").inner_text()

    page.click("button.fetch-now")
    page.wait_for_selector("#fetch-status[data-phase=done]")
    assert "1 new message" in page.locator("#fetch-status").inner_text()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-incoming-server.png"))
    ticket = Ticket.objects.get(subject="Scanner jams on page two")
    page.goto(ticket.get_absolute_url())
    page.wait_for_selector("h1:has-text('Scanner jams on page two')")
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-incoming.png"))

    server = IncomingServer.objects.get()
    page.goto(server.get_absolute_url())
    page.click("#edit-server")
    page.fill("input[name=password]", "not-the-password")
    page.click("button:has-text('Save')")
    page.click("#test-connection")
    page.wait_for_selector("text=Test failed")
    assert "AUTHENTICATIONFAILED" in page.locator(".server-error").inner_text()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-incoming-error.png"))
