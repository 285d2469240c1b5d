"""Browser: the Content-Security-Policy and *Show images* on received HTML.

Remote images of a received message make no request until the reader clicks
*Show images*; ``cid:`` images show at once; anything else remote is refused by
the page's policy (the ``page`` fixture fails a test on any CSP violation).
"""

from __future__ import annotations

import base64

import pytest

from feed import services
from feed.attachments import AttachmentInput
from knowlix.models import Contact

pytestmark = pytest.mark.browser
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TRACKER = "https://tracker.example/pixel.png?who=alice"


@pytest.fixture
def received(ticket, settings, tmp_path):
    """A received message with a tracking pixel and an inline (cid:) logo."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=Contact.objects.get(),
        email_from="dana@customer.example",
        subject="Newsletter",
        body_html=(
            f'<p>Hello</p><img src="{TRACKER}" alt="pixel">'
            '<img src="cid:logo1" alt="logo">'
        ),
        attachments=[AttachmentInput("logo.png", PNG, "image/png", "logo1")],
    )


@pytest.fixture
def tracker(page) -> list[str]:
    """The tracker's site answered by the browser's router: the URLs it was asked."""
    requests: list[str] = []

    def fulfil(route):
        requests.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=PNG)

    page.route("https://tracker.example/**", fulfil)
    return requests


def test_remote_images_wait_for_show_images(
    page, tracker, login, alice, ticket, received
):
    """No request to the tracker until *Show images*; the cid logo shows at once."""
    login(alice)
    page.goto(ticket.get_absolute_url())
    article = page.locator(f"#message-{received.pk}")
    article.wait_for()
    logo = article.locator(".feed-body img[alt=logo]")
    logo.wait_for()
    page.wait_for_load_state("networkidle")
    assert logo.evaluate("el => el.complete && el.naturalWidth") == 1
    assert tracker == []
    assert article.locator(".blocked-image").inner_text() == "[pixel]"

    article.locator("a.feed-show-images").click()
    page.wait_for_url(lambda url: f"images={received.pk}" in url)
    pixel = page.locator(f"#message-{received.pk} .feed-body img[alt=pixel]")
    pixel.wait_for()
    page.wait_for_load_state("networkidle")
    assert pixel.evaluate("el => el.complete && el.naturalWidth") == 1
    assert tracker == [TRACKER]


def test_always_for_this_sender_in_the_browser(
    page, tracker, login, alice, ticket, received
):
    """*Always for this sender* reloads the message with its images, and they stay
    on the next visit, under the page's policy (no violation)."""
    login(alice)
    page.goto(ticket.get_absolute_url())
    article = page.locator(f"#message-{received.pk}")
    article.locator("button.feed-images-always").click()
    page.wait_for_url(lambda url: f"message={received.pk}" in url)
    page.goto(ticket.get_absolute_url())
    pixel = page.locator(f"#message-{received.pk} .feed-body img[alt=pixel]")
    pixel.wait_for()
    page.wait_for_load_state("networkidle")
    assert pixel.evaluate("el => el.complete && el.naturalWidth") == 1
    assert tracker and set(tracker) == {TRACKER}


def test_policy_refuses_what_slips_into_a_page(page, login, alice, ticket):
    """A remote image or an inline script added to a page is refused and reported."""
    requests: list[str] = []
    page.route("https://tracker.example/**", lambda r: requests.append(r.request.url))
    login(alice)
    page.goto(ticket.get_absolute_url())
    page.evaluate(
        """() => {
            const img = document.createElement("img");
            img.src = "https://tracker.example/slipped.png";
            document.body.append(img);
            const div = document.createElement("div");
            div.innerHTML = '<img src="x.png" onerror="window.__ran = true">';
            document.body.append(div);
        }"""
    )
    page.wait_for_timeout(500)
    assert requests == []
    assert page.evaluate("window.__ran === undefined")
    violations = list(page.csp_violations)
    page.csp_violations.clear()  # expected here: the fixture would fail the test
    assert any("img-src" in v for v in violations)
    assert any("script-src" in v for v in violations)
