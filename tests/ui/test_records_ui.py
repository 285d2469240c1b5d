"""Browser: log in, create a ticket, open it, edit it, check the rendered page."""

import pytest

from knowlix.models import Ticket

pytestmark = pytest.mark.browser


def test_create_open_and_edit_a_ticket(page, login, alice, contact, settings):
    """The whole record flow through the real UI in Chromium."""
    login(alice)
    page.click("nav.apps >> text=Helpdesk")
    page.click("text=New")
    page.fill("input[name=subject]", "Coffee machine leaks")
    page.select_option("select[name=contact]", str(contact.pk))
    page.select_option("select[name=priority]", "urgent")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Coffee machine leaks')")
    ticket = Ticket.objects.get(subject="Coffee machine leaks")
    assert page.url.endswith(f"/helpdesk/tickets/{ticket.pk}/")
    assert page.locator(".record-fields").inner_text().count("Urgent") == 1
    page.click("text=Edit")
    page.select_option("select[name=stage]", "solved")
    page.fill("input[name=subject]", "")
    page.click("button:has-text('Save')")
    assert "This field is required." in page.locator(".errorlist").first.inner_text()
    page.fill("input[name=subject]", "Coffee machine leaks (fixed)")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('fixed')")
    ticket.refresh_from_db()
    assert ticket.stage == "solved"
    assert "Solved" in page.locator(".record-fields").inner_text()
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-ticket.png"), full_page=True
    )
