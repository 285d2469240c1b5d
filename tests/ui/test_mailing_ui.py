"""Browser: an admin writes a mailing, sees its audience, confirms Send with the
count, and the page then shows the mailing sent with its statistics; at a phone's
width nothing overflows."""

import pytest

from feed import tasks
from knowlix.models import Contact, Mailing

pytestmark = pytest.mark.browser


def test_write_confirm_and_send_a_mailing(page, login, admin_user, settings):
    """Create through the form, Send asks with the count, the worker's part runs,
    the page shows Sent and the figures."""
    for n in range(3):
        Contact.objects.create(name=f"C{n}", email=f"c{n}@acme.example", company="Acme")
    Contact.objects.create(name="Other", email="o@other.example", company="Other")
    page.set_viewport_size({"width": 390, "height": 844})
    login(admin_user)
    page.click("nav.apps >> text=Mailings")
    page.click("text=New")
    page.fill("input[name=subject]", "Spring news")
    page.fill("textarea[name=body]", "Hello,\n\nWe moved.")
    page.select_option("select[name=audience]", "company")
    page.fill("input[name=company]", "acme")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Spring news')")
    assert page.locator("[data-test=audience-count]").inner_text() == "3"
    asked: list[str] = []

    def accept(dialog) -> None:  # noqa: ANN001
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click("button:has-text('Send to 3 contacts')")
    page.wait_for_selector("text=Sending: a worker is queueing its mail")
    assert asked and "to 3 contacts?" in asked[0]
    mailing = Mailing.objects.get(subject="Spring news")
    assert mailing.state == Mailing.State.SENDING
    tasks.send_mailing(mailing.pk)  # the worker's part
    page.reload()
    assert page.locator("[data-test=mailing-state]").inner_text() == "Sent"
    assert page.locator("[data-test=stat-audience]").inner_text() == "3"
    assert page.locator("[data-test=stat-queued]").inner_text() == "3"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-mailing.png"), full_page=True
    )
