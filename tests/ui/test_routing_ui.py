"""Browser: a reply received by mail appears on the ticket as a reply to the message
it answers ("In reply to ..." jumps to it), with its attachment; and the quarantine
page lists and discards an unroutable one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from feed.models import Message
from feed.services import post_message
from knowlix import params
from knowlix.users import get_profile
from routing.models import UnprocessedMail
from routing.services import route_incoming_message
from tests.routing.conftest import eml, ensure_module_aliases

pytestmark = pytest.mark.browser


def test_routed_reply_is_threaded_with_its_attachment(
    page, login, alice, ticket, settings, tmp_path
):
    """Dana's emailed reply shows as a reply to Alice's mail, photo downloadable."""
    settings.MEDIA_ROOT = tmp_path / "media"
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    ensure_module_aliases()
    original = post_message(
        record=ticket,
        kind=Message.Kind.EMAIL,
        author=alice,
        subject="Printer on fire",
        body_html="<p>Could you send us a photo of the printer?</p>",
    )
    # A note in between: the thread is shown by the reply itself, not by adjacency.
    post_message(
        record=ticket,
        kind=Message.Kind.NOTE,
        author=alice,
        body_html="<p>Waiting for the customer's photo.</p>",
    )
    result = route_incoming_message(
        raw=eml("reply_in_reply_to.eml", parent=original.message_id), source="test"
    )
    assert result.outcome == "routed"
    reply = Message.objects.get(pk=result.routes[0].message)
    assert reply.parent == original

    login(alice)
    page.goto(ticket.get_absolute_url())
    received = page.locator(f"#message-{reply.pk}")
    expect(received).to_be_visible()
    expect(received).to_contain_text("Here is the photo of the printer.")
    expect(received.locator("header")).to_contain_text("Received")
    # Threaded: the reply is set in as a reply and names the message it answers.
    expect(received).to_have_class(re.compile(r"\bfeed-reply\b"))
    reply_to = received.locator("a.feed-reply-to")
    expect(reply_to).to_have_text(
        re.compile(r"In reply to Alice:\s+Could you send us a photo of the printer\?")
    )
    original_card = page.locator(f"#message-{original.pk}")
    expect(original_card).not_to_have_class(re.compile(r"\bfeed-reply\b"))
    expect(original_card.locator(".feed-reply-to")).to_have_count(0)
    # ... and the original lists its reply.
    expect(original_card.locator(".feed-replies")).to_have_text(
        re.compile(r"1 reply from\s+Dana Customer")
    )
    # Its photo is shown and downloads as the file Dana sent.
    link = received.locator("a.feed-file", has_text="printer.png")
    expect(link).to_be_visible()
    expect(received.locator("img[alt='printer.png']")).to_be_visible()
    with page.expect_download() as download:
        received.locator("a", has_text="download").click()
    assert download.value.suggested_filename == "printer.png"
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-routing-thread.png"), full_page=True
    )
    # The links jump between the two on the same page (no reload), marking the target.
    page.evaluate("window.__same_page = true")
    reply_to.click()
    page.wait_for_url(re.compile(rf"#message-{original.pk}$"))
    assert original_card.evaluate("el => el.matches(':target')")
    expect(original_card).to_contain_text("Could you send us a photo of the printer?")
    original_card.locator("a.feed-reply-link", has_text="Dana Customer").click()
    page.wait_for_url(re.compile(rf"#message-{reply.pk}$"))
    assert received.evaluate("el => el.matches(':target')")
    assert page.evaluate("window.__same_page") is True
    params.clear_cache()


def test_quarantined_mail_is_listed_and_discarded_from_the_page(
    page, login, admin_user, settings, tmp_path
):
    """An unroutable mail waits in Unprocessed mail with its reason; Discard drops it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    raw = eml("not_for_us.eml")
    assert route_incoming_message(raw=raw, source="test").outcome == "quarantined"

    login(admin_user)
    page.goto("/settings/technical/routing/unprocessed/")
    row = page.locator("tr", has_text="Misdelivered")
    row.wait_for()
    assert "No route" in row.inner_text()
    row.locator("button:has-text('Discard')").click()
    page.locator("text=Message discarded.").wait_for()
    assert not UnprocessedMail.objects.exists()
    params.clear_cache()


def test_aliases_page_on_a_phone_shows_kind_policy_and_invalid_reason(
    page, login, admin_user, alice, settings
):
    """On a phone-sized screen, each module alias shows its kind and policy; one
    whose default user was deleted reads "Invalid" with the reason."""
    from routing.models import Alias

    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    ensure_module_aliases()
    Alias.objects.filter(name="sales").update(defaults={"owner": alice.pk})
    alice.delete()
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    page.set_viewport_size({"width": 390, "height": 844})
    login(admin_user)
    page.goto(reverse("routing:alias-list"))
    helpdesk = page.locator("tr", has_text="helpdesk@example.com")
    expect(helpdesk).to_contain_text("Helpdesk ticket")
    expect(helpdesk).to_contain_text("Everyone")
    expect(helpdesk).to_contain_text("Active")
    sales = page.locator("tr", has_text="sales@example.com")
    expect(sales).to_contain_text("Opportunity")
    expect(sales).to_contain_text("Invalid")
    expect(sales).to_contain_text("points at a deleted user")
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-aliases.png"), full_page=True
    )
