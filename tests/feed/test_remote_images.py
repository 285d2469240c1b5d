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


@pytest.mark.parametrize(
    "tracker",
    [
        TRACKER,
        # What browsers and mail readers also read as https://tracker.example/...
        "https:/tracker.example/pixel.png",
        "https:tracker.example/pixel.png",
        "https:\\\\tracker.example\\pixel.png",
        " https://tracker.example/pixel.png",
        "HTTPS:/\\tracker.example/pixel.png",
    ],
)
def test_notification_mail_carries_no_remote_image(
    tracker, ticket, bob, settings, smtp_server
):
    """A received message relayed to a colleague by mail loses its remote image
    (a placeholder instead): no tracking pixel reaches the colleague's reader,
    however its URL is spelled."""
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
        body_html=f'<p>Hello</p><img src="{tracker}" alt="pixel">',
    )
    process_outbox()
    [mail] = [m for m in smtp_server.received if m.rcpt_tos == ["bob@example.com"]]
    assert b"tracker.example" not in mail.raw
    assert b"[pixel]" in mail.raw


def received_from(ticket, contact, n: int, **kw):
    return services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        email_from=contact.email,
        subject=f"News {n}",
        body_html=f'<p>n{n}</p><img src="{TRACKER}&n={n}" alt="pixel{n}">',
        **kw,
    )


def test_always_for_this_sender_shows_only_that_senders_images(
    client, alice, carol, ticket, make_contact
):
    """After *Always for this sender*, that sender's images load (and the page's
    policy allows them); another sender's and a forged copy's stay placeholders."""
    from django.urls import reverse

    dana = Contact.objects.get()
    mallory = make_contact(name="Mallory", email="mallory@else.example")
    first = received_from(ticket, dana, 1)
    received_from(ticket, mallory, 2)
    received_from(ticket, dana, 3, is_unverified_sender=True)
    url = ticket.get_absolute_url()
    client.force_login(alice)
    page = client.get(url)
    assert "tracker.example" not in page.content.decode()
    assert "https:" not in page["Content-Security-Policy"].split("img-src")[1]

    always = reverse("feed:images-always", args=[first.pk])
    client.force_login(carol)
    assert client.post(always).status_code == 404
    client.force_login(alice)
    response = client.post(always)
    assert response["Location"] == f"{url}?message={first.pk}#message-{first.pk}"
    page = client.get(url)
    html = page.content.decode()
    assert f"{TRACKER}&amp;n=1" in html
    assert "n=2" not in html and "[pixel2]" in html
    assert "n=3" not in html and "[pixel3]" in html
    assert "https:" in page["Content-Security-Policy"].split("img-src")[1]
