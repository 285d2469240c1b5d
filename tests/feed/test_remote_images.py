"""Remote resources: the pages' Content-Security-Policy, and received HTML relayed
by mail without its remote images (the browser side is tests/ui/test_csp_ui.py)."""

from __future__ import annotations

import pytest

from feed import services
from feed.services import follow
from knowlix.models import Contact
from knowlix.users import get_profile
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db
TRACKER = "https://tracker.example/pixel.png?who=bob"


def test_every_page_sends_the_policy(client, alice, ticket):
    """Login and record pages forbid inline script and remote images."""
    pages = ["/login/"]
    client.force_login(alice)
    pages += ["/", ticket.get_absolute_url()]
    for url in pages:
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        img = policy.split("img-src")[1].split(";")[0]
        assert "https:" not in img and "*" not in img


def test_notification_mail_carries_no_remote_image(ticket, bob, settings, smtp_server):
    """A received message relayed to a colleague by mail loses its remote image
    (a placeholder instead): no tracking pixel reaches the colleague's reader."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    profile = get_profile(bob)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save(update_fields=["notify_by"])
    follow(record=ticket, user=bob)
    services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=Contact.objects.get(),
        email_from="dana@customer.example",
        subject="Newsletter",
        body_html=f'<p>Hello</p><img src="{TRACKER}" alt="pixel">',
    )
    process_outbox()
    [mail] = [m for m in smtp_server.received if m.rcpt_tos == ["bob@example.com"]]
    assert b"tracker.example" not in mail.raw
    assert b"[pixel]" in mail.raw
