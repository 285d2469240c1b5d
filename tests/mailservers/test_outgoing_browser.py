"""Browser: send from a ticket, read it in the Local mailbox, then a real server's
refusals explained (Test Connection, and a failed delivery in the feed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from knowlix import params
from knowlix.celery import app
from knowlix.users import get_profile
from mailservers.models import CaughtMail, OutgoingMail
from tests.servers.smtp_fixtures import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.browser


@pytest.fixture
def eager_celery() -> Iterator[None]:
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def send_from_ticket(page, ticket, subject: str, body: str):  # noqa: ANN001, ANN201
    page.goto(ticket.get_absolute_url())
    page.locator("#feed-panel").wait_for()
    page.click("summary:has-text('Send message')")
    form = page.locator("[data-test=message-form]")
    form.locator("input[name=subject]").fill(subject)
    form.locator("textarea[name=body]").fill(body)
    form.locator("button:has-text('Send')").click()
    page.locator("article.feed-email", has_text=body).wait_for()


def open_menu(page, entry: str) -> None:  # noqa: ANN001
    page.click("summary:has-text('Settings')")
    page.click(f"text={entry}")


def test_send_read_locally_then_a_real_server_explains_failures(
    page, login, admin_user, ticket, smtp_server, mailcatcher, eager_celery, settings
):  # noqa: ANN001
    """The whole outgoing flow in Chromium, as a new administrator meets it."""
    settings.MEDIA_ROOT = settings.VAR_DIR / "media-outgoing-browser"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    login(admin_user)

    # 1. Nothing configured: the mail lands in the Local mailbox.
    send_from_ticket(page, ticket, "Your printer", "A technician comes at nine.")
    caught = CaughtMail.objects.get()
    assert caught.rcpt_tos == ["dana@customer.example"]
    open_menu(page, "Local mailbox")
    page.click("a:has-text('Your printer')")
    page.locator(".mail-html", has_text="A technician comes at nine.").wait_for()
    page.click("a:has-text('Headers')")
    assert f"reply+{ticket.reply_token}@catchall.test" in page.content()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-localmailbox.png"))

    # 2. A real server, a wrong password: Test Connection says so.
    open_menu(page, "Outgoing Mail Servers")
    page.click("text=New server")
    page.fill("input[name=server-name]", "Company relay")
    page.fill("input[name=server-host]", smtp_server.host)
    page.fill("input[name=server-port]", str(smtp_server.port))
    page.select_option("select[name=server-security]", "none")
    page.fill("input[name=server-username]", SMTP_USER)
    page.fill("input[name=server-password]", "not-the-password")
    page.fill("input[name=server-from_filter]", "example.com")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Company relay saved.")
    page.click("#test-connection")
    page.wait_for_selector("text=refused the credentials")
    page.click("#edit-server")
    page.fill("input[name=server-password]", SMTP_PASSWORD)
    page.click("button:has-text('Save')")
    page.click("#test-connection")
    page.wait_for_selector("text=the server accepted the login")
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-outgoing-server.png"))

    # 3. The server refuses the next mail: the feed shows the recipient's reason.
    params.set_param(params.USE_CUSTOM_SERVERS, "true")
    smtp_server.reject_next(550, "5.7.1 Relaying denied by policy")
    send_from_ticket(page, ticket, "Second visit", "We come back on Monday.")
    mail = OutgoingMail.objects.get(subject__contains="Second visit")
    assert mail.server.name == "Company relay"
    assert mail.state == OutgoingMail.State.FAILED
    page.reload()
    article = page.locator("article.feed-email", has_text="We come back on Monday.")
    article.locator(".feed-reason", has_text="Relaying denied").wait_for()
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-outgoing-failure.png"))
    open_menu(page, "Email queue")
    page.click("a:has-text('Failed')")
    page.locator("td", has_text="Relaying denied").first.wait_for()
    open_menu(page, "Outgoing Mail Servers")
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-outgoing-list.png"))
