"""The live feed's cheap check: 304 while nothing changed, the first page once a
message or a delivery state changed; the feed says what the Email queue says."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feed import services
from feed.models import Message
from mailservers.models import OutgoingMail
from mailservers.services import outbox


def changes_url(record) -> str:
    ct = ContentType.objects.get_for_model(record)
    return reverse("feed:changes", args=[ct.pk, record.pk])


def poll(client, record, etag: str = ""):
    headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return client.get(changes_url(record), **headers)


def test_unchanged_feed_answers_304_without_rendering(client, alice, ticket):
    """The second poll with the first poll's ETag is a 304 with no body, and reads
    no message rows (one aggregate query for the stamp)."""
    client.force_login(alice)
    first = poll(client, ticket)
    assert first.status_code == 200 and first["ETag"]
    with CaptureQueriesContext(connection) as queries:
        again = poll(client, ticket, first["ETag"])
    assert again.status_code == 304 and again.content == b""
    # Session, user, permissions, the record, the stamp: nothing per message.
    assert len(queries.captured_queries) <= 6
    assert not any("feed_message" in q["sql"] and "body_html" in q["sql"]
                   for q in queries.captured_queries)  # fmt: skip


def test_new_message_changes_the_stamp(client, alice, bob, ticket):
    """A note posted after the page loaded makes the next poll send the new page."""
    client.force_login(alice)
    etag = poll(client, ticket)["ETag"]
    services.post_message(
        record=ticket, kind=Message.Kind.NOTE, author=bob, body_html="<p>On it</p>"
    )
    response = poll(client, ticket, etag)
    assert response.status_code == 200 and response["ETag"] != etag
    assert "On it" in response.content.decode()


def test_delivery_state_change_changes_the_stamp(client, alice, ticket, settings,
                                                  smtp_server):  # fmt: skip
    """Sending the queued mail (queued → sent) changes the stamp; the page says sent."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    client.force_login(alice)
    services.post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>Hi</p>"
    )
    first = poll(client, ticket)
    assert 'badge-muted">queued<' in first.content.decode()
    outbox.process_outbox()
    response = poll(client, ticket, first["ETag"])
    assert response.status_code == 200
    assert 'badge-ok">sent<' in response.content.decode()


def test_deferred_mail_reads_deferred_with_reason(client, alice, ticket, settings,
                                                  smtp_server):  # fmt: skip
    """A temporary refusal: the queue says deferred, and so does the feed, with the
    server's reason (it used to read "queued")."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    client.force_login(alice)
    services.post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>Hi</p>"
    )
    smtp_server.reject_next(451, "4.7.1 Greylisted, try again later")
    outbox.process_outbox()
    mail = OutgoingMail.objects.get()
    assert mail.state == OutgoingMail.State.DEFERRED
    html = poll(client, ticket).content.decode()
    assert 'badge-warn">deferred<' in html
    assert "Greylisted" in html


def test_unread_count_answers_304_when_unchanged(client, alice, bob, ticket):
    """The badge poll: 304 for the count the page shows, JSON once it changed."""
    client.force_login(bob)
    url = reverse("feed:unread-count")
    first = client.get(url)
    assert first.json() == {"unread": 0}
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    services.notify_users(target=ticket, users=[bob], subject="S", body_html="<p>x</p>")
    changed = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed.json() == {"unread": 1}


def test_outsider_cannot_poll_a_feed(client, carol, ticket):
    """The changes URL checks access like the panel (a 404 for an outsider)."""
    client.force_login(carol)
    assert poll(client, ticket).status_code == 404
