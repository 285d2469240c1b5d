"""Browser: a reply received by mail appears on the ticket, threaded under the
message it answers, with its attachment; and the quarantine page lists and discards an unroutable one."""

from __future__ import annotations

import pytest

from feed.models import Message
from feed.services import post_message
from knowlix import params
from knowlix.users import get_profile
from routing.models import UnprocessedMail
from routing.services import ensure_default_aliases, route_incoming_message
from tests.routing.conftest import eml

pytestmark = pytest.mark.browser


def test_routed_reply_is_threaded_with_its_attachment(
    page, login, alice, ticket, settings, tmp_path
):
    """Alice's mail, Dana's emailed reply with a photo: both on the ticket's feed."""
    settings.MEDIA_ROOT = tmp_path / "media"
    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    ensure_default_aliases()
    original = post_message(
        record=ticket,
        kind=Message.Kind.EMAIL,
        author=alice,
        subject="Printer on fire",
        body_html="<p>Could you send us a photo of the printer?</p>",
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
    received.wait_for()
    assert "Here is the photo of the printer." in received.inner_text()
    assert "Received" in received.locator("header").inner_text()
    # Threaded: the reply sits right above the message it answers (newest first).
    ids = page.locator("article.feed-message").evaluate_all("els => els.map(e => e.id)")
    assert ids.index(f"message-{reply.pk}") + 1 == ids.index(f"message-{original.pk}")
    link = received.locator("a.feed-file", has_text="printer.png")
    link.wait_for()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    assert response.body().startswith(b"\x89PNG")
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
