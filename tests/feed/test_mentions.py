"""@mentions: suggestions by name, unknown names refused, known ones highlighted."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from feed.mentions import clear_people_cache, highlight_mentions
from feed.models import Message, Notification


def post_url(record) -> str:
    ct = ContentType.objects.get_for_model(record)
    return reverse("feed:post", args=[ct.pk, record.pk])


def test_people_are_found_by_full_name_and_user_name(client, alice, make_user):
    """ "@mar" finds Marc Demo by first name, "@demo" by last name, "@mdemo" by login."""
    make_user("mdemo", first_name="Marc", last_name="Demo")
    client.force_login(alice)
    url = reverse("feed:people")
    for query in ("mar", "Demo", "mdem"):
        people = client.get(url, {"q": query}).json()["people"]
        assert {"username": "mdemo", "name": "Marc Demo"} in people, query
    assert client.get(url, {"q": "zzz"}).json()["people"] == []
    assert client.get(url, {"names": "mdemo,nobody"}).json() == {"known": ["mdemo"]}


def test_note_with_unknown_mention_is_refused_with_the_name(client, alice, ticket):
    """ "@nobody" is refused before anything is posted, naming it."""
    client.force_login(alice)
    response = client.post(
        post_url(ticket),
        {"kind": "note", "body": "Ask @nobody about it"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "No colleague is called @nobody" in response.content.decode()
    assert not Message.objects.filter(kind="note").exists()


def test_known_mention_is_posted_notified_and_highlighted(client, alice, bob, ticket):
    """ "@bob" notifies bob and shows as a highlighted "@Bob" in the feed."""
    clear_people_cache()
    client.force_login(alice)
    response = client.post(
        post_url(ticket),
        {"kind": "note", "body": "Over to @bob"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert Notification.objects.filter(user=bob, message__kind="note").exists()
    assert '<mark class="mention" title="@bob">@Bob</mark>' in response.content.decode()
    assert "Note logged." in response.content.decode()


def test_highlight_leaves_tags_and_unknown_names_alone(db):
    """Only text is touched: an address in a link and an unknown name stay as typed."""
    html = '<p><a href="mailto:x@bob.example">x@bob.example</a> @ghost</p>'
    assert highlight_mentions(html) == html
