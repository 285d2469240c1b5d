"""The feed's first screen costs a fixed number of queries, whatever its length."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import reverse

from feed import services
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
