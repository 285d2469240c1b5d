"""The feed's first screen costs a fixed number of queries, whatever its length."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models.signals import post_init
from django.urls import reverse

from feed import services
from feed.models import Message, MessageRecipient
from feed.selectors import SHOWN_RECIPIENTS
from mailservers.models import OutgoingMail, OutgoingRecipient
from tests.fixtures_bulk import QueryCounter, make_messages

pytestmark = pytest.mark.django_db


def count_panel_queries(client, record) -> tuple[int, str]:
    ct = ContentType.objects.get_for_model(record)
    url = reverse("feed:panel", args=[ct.pk, record.pk])
    client.get(url)  # warm per-process caches (content types, permissions)
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        html = client.get(url).content.decode()
    return counter.count, html


def test_panel_queries_do_not_grow_with_messages(client, alice, bob, ticket, contact):
    """5 or 60 messages with files, recipients and states: the same query count."""
    client.force_login(alice)
    services.follow(record=ticket, user=bob)
    make_messages(record=ticket, author=alice, contact=contact, count=5)
    small, html = count_panel_queries(client, ticket)
    assert html.count('<article class="feed-message') == 6
    make_messages(record=ticket, author=bob, contact=contact, count=55)
    large, html = count_panel_queries(client, ticket)
    assert html.count('<article class="feed-message') == 30  # one page
    assert "Load older messages" in html and 'badge badge-ok">sent<' in html
    assert large == small
    print(f"panel queries: {small}")
    assert small <= 20


def test_a_post_to_many_shows_its_first_recipients_and_the_count(
    client, alice, ticket, contact
):
    """A message to 300 (think 100,000) recipients: the panel loads the first
    SHOWN_RECIPIENTS rows and counts the rest, in as many queries as for a
    message to one."""
    client.force_login(alice)
    make_messages(record=ticket, author=alice, contact=contact, count=4)
    small, _html = count_panel_queries(client, ticket)
    big = Message.objects.create(
        content_object=ticket, kind="email", author_user=alice, message_id="<b@x>"
    )
    rows = MessageRecipient.objects.bulk_create(
        MessageRecipient(message=big, address=f"c{n}@big.example", name=f"C{n:03}")
        for n in range(300)
    )
    mail = OutgoingMail.objects.create(
        feed_message=big, from_address="a@catchall.test", message_id="<o@x>", raw=b""
    )
    OutgoingRecipient.objects.bulk_create(
        OutgoingRecipient(mail=mail, message_recipient=r, address=r.address)
        for r in rows
    )
    loaded = []

    def count_rows(sender, instance, **kwargs):
        if instance.message_id == big.pk:
            loaded.append(instance.pk)

    post_init.connect(count_rows, sender=MessageRecipient)
    try:
        large, html = count_panel_queries(client, ticket)
    finally:
        post_init.disconnect(count_rows, sender=MessageRecipient)
    assert large == small
    shown = [f"C{n:03}" for n in range(SHOWN_RECIPIENTS)]
    assert all(name in html for name in shown)
    assert f"C{SHOWN_RECIPIENTS:03}" not in html
    assert "300 recipients in all" in html
    # Two panel renders (one to warm caches): the first rows each time, no more.
    assert len(loaded) == 2 * SHOWN_RECIPIENTS
    assert set(loaded) == {r.pk for r in rows[:SHOWN_RECIPIENTS]}
