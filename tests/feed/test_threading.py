"""Reply threading in the feed: a reply names the message it answers and links to it,
and the first screen still costs a fixed number of queries however many replies."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feed import services
from feed.models import Message
from feed.selectors import FEED_PAGE_SIZE
from feed.services import create_record
from feed.templatetags.feed_tags import reply_excerpt
from knowlix.models import Ticket
from tests.fixtures_bulk import make_messages

pytestmark = pytest.mark.django_db

REPLY_LINK = re.compile(
    r'<a class="feed-reply-to"\s+href="\?message=(\d+)#message-(\d+)"'
)


def panel_url(record) -> str:
    ct = ContentType.objects.get_for_model(record)
    return reverse("feed:panel", args=[ct.pk, record.pk])


def article(html: str, message: Message) -> str:
    """The rendered <article> of ``message`` (fails if it is not on the page)."""
    start = html.index(f'id="message-{message.pk}"')
    start = html.rindex("<article", 0, start)
    return html[start : html.index("</article>", start)]


def post_email(record, **fields) -> Message:
    return services.post_message(record=record, kind=Message.Kind.EMAIL, **fields)


def test_reply_names_its_parent_and_links_to_it(client, alice, ticket, contact):
    """A received reply shows "In reply to Alice: <first words>" linking to Alice's mail."""
    original = post_email(
        ticket,
        author=alice,
        subject="Printer on fire",
        body_html="<p>Could you send us a photo of the printer, please?</p>",
    )
    reply = post_email(
        ticket,
        author_contact=contact,
        direction="in",
        subject="Re: Printer on fire",
        body_text="Here it is.",
        parent=original,
    )
    client.force_login(alice)
    html = client.get(panel_url(ticket)).content.decode()

    shown = article(html, reply)
    assert 'class="feed-message feed-email feed-reply"' in shown
    assert REPLY_LINK.search(shown).groups() == (str(original.pk), str(original.pk))
    assert f'data-parent="message-{original.pk}"' in shown
    text = " ".join(re.sub(r"<[^>]+>", " ", shown).split())
    assert (
        "In reply to Alice : Could you send us a photo of the printer, please?" in text
    )
    parent = article(html, original)
    assert "feed-reply-to" not in parent and "feed-reply" not in parent


def test_excerpt_is_the_parents_own_words_not_its_quote():
    """The excerpt stops at the quoted history and is cut to a dozen words."""
    quoting = Message(
        body_text="Thanks, that works.\n\nOn Tue, Bob wrote:\n> the old text\n"
    )
    assert reply_excerpt(quoting) == "Thanks, that works."
    long = Message(body_text=" ".join(f"w{i}" for i in range(30)))
    assert reply_excerpt(long) == " ".join(f"w{i}" for i in range(12)) + "…"
    assert reply_excerpt(Message(body_text="> all quoted", subject="Hi")) == "Hi"
    assert reply_excerpt(Message(kind=Message.Kind.NOTE)) == "Note"


def test_reply_to_a_message_on_another_record_reveals_nothing(
    client, alice, ticket, contact
):
    """A parent elsewhere is mentioned, never named or linked."""
    other = create_record(record=Ticket(subject="Secret merger"), author=alice)
    elsewhere = post_email(
        other, author=alice, subject="Secret merger", body_text="Top secret plans"
    )
    reply = post_email(ticket, author=alice, body_text="Moved here.")
    Message.objects.filter(pk=reply.pk).update(parent=elsewhere)
    client.force_login(alice)
    shown = article(client.get(panel_url(ticket)).content.decode(), reply)
    assert "In reply to a message on another record" in shown
    assert "Secret" not in shown and "Top secret" not in shown
    assert not REPLY_LINK.search(shown)


def thread_all(record) -> None:
    """Make every message of ``record`` a reply to the one before it."""
    rows = list(
        Message.objects.filter(
            content_type=ContentType.objects.get_for_model(record),
            object_id=record.pk,
        ).order_by("created_at", "id")
    )
    for previous, row in zip(rows, rows[1:], strict=False):
        row.parent = previous
    Message.objects.bulk_update(rows[1:], ["parent"], batch_size=500)


def first_screen(client, url: str) -> tuple[int, str]:
    client.get(url)  # warm per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_threaded_first_screen_queries_do_not_grow(client, alice, ticket, contact):
    """100 or 1,000 replies: as many queries as a feed without any reply."""
    client.force_login(alice)
    make_messages(record=ticket, author=alice, contact=contact, count=99)
    flat, html = first_screen(client, panel_url(ticket))
    assert "feed-reply-to" not in html
    flat_page, _ = first_screen(client, ticket.get_absolute_url())

    thread_all(ticket)  # 100 messages, 99 replies (users and contacts as authors)
    small, html = first_screen(client, panel_url(ticket))
    assert len(REPLY_LINK.findall(html)) == FEED_PAGE_SIZE
    assert "In reply to <strong>Dana Customer" in html  # contact author joined too
    assert "In reply to <strong>Alice" in html

    make_messages(record=ticket, author=alice, contact=contact, count=900)
    thread_all(ticket)
    large, html = first_screen(client, panel_url(ticket))
    assert len(REPLY_LINK.findall(html)) == FEED_PAGE_SIZE
    large_page, page_html = first_screen(client, ticket.get_absolute_url())
    assert len(REPLY_LINK.findall(page_html)) == FEED_PAGE_SIZE

    assert flat == small == large
    assert flat_page == large_page <= 20
    print(f"threaded panel queries: {large}, record page: {large_page}")


def test_parent_beyond_the_page_is_reached_through_its_link(
    client, alice, ticket, contact
):
    """Following the link of a reply whose parent is older than the page shows it."""
    original = post_email(ticket, author=alice, body_text="The first question.")
    Message.objects.filter(pk=original.pk).update(
        created_at=original.created_at - dt.timedelta(days=1)
    )
    make_messages(record=ticket, author=alice, contact=contact, count=40)
    reply = post_email(
        ticket,
        author_contact=contact,
        direction="in",
        body_text="Late answer.",
        parent=original,
    )
    client.force_login(alice)
    html = client.get(ticket.get_absolute_url()).content.decode()
    assert f'id="message-{original.pk}"' not in html
    href = REPLY_LINK.search(article(html, reply))
    assert href.group(1) == str(original.pk)

    followed = client.get(f"{ticket.get_absolute_url()}?message={original.pk}")
    assert f'id="message-{original.pk}"' in followed.content.decode()


def test_older_page_shows_replies_too(client, alice, ticket, contact):
    """The "Load older messages" fragment renders the same reply links."""
    make_messages(record=ticket, author=alice, contact=contact, count=45)
    thread_all(ticket)
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    newest = Message.objects.filter(content_type=ct, object_id=ticket.pk).first()
    url = reverse("feed:messages-older", args=[ct.pk, ticket.pk])
    html = client.get(f"{url}?before={newest.pk}").content.decode()
    assert len(REPLY_LINK.findall(html)) == FEED_PAGE_SIZE
