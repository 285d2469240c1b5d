"""With DEBUG on (make run) the app still shows its own 404/400/500 pages, never
Django's debug pages listing URL patterns, settings or source; a favicon exists."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from feed.models import Message
from knowlix.models import Ticket


def ticket_messages(ticket: Ticket) -> list[Message]:
    ct = ContentType.objects.get_for_model(Ticket)
    return list(Message.objects.filter(content_type=ct, object_id=ticket.pk))


DEBUG_MARKS = ("Using the URLconf", "Traceback", "DEBUG = True", "database on fire")


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    settings.KNOWLIX_DEBUG_PAGES = False
    settings.ROOT_URLCONF = "tests.knowlix.error_urls"
    return settings


def assert_app_page(response, status: int, text: str) -> None:
    html = response.content.decode()
    assert response.status_code == status
    assert text in html
    assert not any(mark in html for mark in DEBUG_MARKS), html[:500]


def test_missing_record_is_the_app_404(debug, client, alice):
    """A ticket that does not exist: the app's 404 with its top bar."""
    client.force_login(alice)
    response = client.get("/helpdesk/tickets/999999/")
    assert_app_page(response, 404, "Nothing here")
    assert "Helpdesk" in response.content.decode()  # the top bar is there


def test_unknown_url_is_the_app_404(debug, client, alice):
    """A URL matching no pattern lists no patterns."""
    client.force_login(alice)
    assert_app_page(client.get("/no/such/page/"), 404, "Nothing here")


def test_missing_slash_still_redirects(debug, client, alice):
    """/helpdesk/tickets redirects to /helpdesk/tickets/ as before."""
    client.force_login(alice)
    response = client.get("/helpdesk/tickets")
    assert response.status_code == 301
    assert response["Location"] == "/helpdesk/tickets/"


def test_server_error_is_the_app_500(debug, alice):
    """An exception in a view: the app's 500 page, no traceback or message."""
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    assert_app_page(client.get("/broken/"), 500, "Something went wrong on our side")


def test_bad_request_is_the_app_400(debug, alice):
    """A suspicious request: the app's 400 page."""
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    assert_app_page(client.get("/suspicious/"), 400, "could not be handled")


def test_too_large_post_is_the_app_400(debug, client, alice):
    """A 10 MB subject posted to a feed: 400 with the app's page, nothing posted."""
    ticket = Ticket.objects.create(subject="T", owner=alice)
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(Ticket)
    response = client.post(
        f"/feed/r/{ct.pk}/{ticket.pk}/post/",
        {"kind": "email", "body": "Hi", "subject": "x" * (10 * 1024 * 1024)},
    )
    assert_app_page(response, 400, "could not be handled")
    assert not ticket_messages(ticket)


def test_debug_pages_on_request(settings, client, alice):
    """KNOWLIX_DEBUG_PAGES=true gives a developer Django's page back."""
    settings.DEBUG = True
    settings.KNOWLIX_DEBUG_PAGES = True
    client.force_login(alice)
    assert "Using the URLconf" in client.get("/no/such/page/").content.decode()


def test_favicon_is_served(client):
    """/favicon.ico answers an icon (no 404 in the log of every page)."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\0\0\1\0" and b"PNG" in body[:40]
