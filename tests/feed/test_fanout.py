"""A post to many followers: the request returns at once, a task tells them chunk
by chunk, each once, and a task killed half-way resumes without repeats."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from feed import fanout
from feed.models import Follower, Message, MessageRecipient, Notification
from feed.services import follow, post_message
from knowlix import params
from mailservers.models import OutgoingRecipient
from tests.fixtures_bulk import add_contact_followers

FOLLOWERS = 230


@pytest.fixture
def big_ticket(ticket, bob, monkeypatch):  # noqa: ANN001, ANN201
    """A ticket with 230 contact followers (+ its users); fan-outs above 100, by 50."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    monkeypatch.setattr(fanout, "INLINE_FOLLOWERS", 100)
    monkeypatch.setattr(fanout, "CHUNK", 50)
    add_contact_followers(record=ticket, count=FOLLOWERS)
    follow(record=ticket, user=bob)
    return ticket


def mailed_addresses() -> Counter[str]:
    return Counter(OutgoingRecipient.objects.values_list("address", flat=True))


def contact_rows(message: Message) -> int:
    """The message's recipient rows of the bulk-made followers."""
    rows = MessageRecipient.objects.filter(message=message)
    return rows.filter(address__endswith="@customers.example").count()


def test_big_post_returns_at_once_and_the_task_tells_each_follower_once(
    big_ticket, alice, bob
):  # noqa: ANN001
    """The post itself writes no follower's mail; the task mails every contact once
    and notifies the user followers, with progress on the message."""
    message = post_message(
        record=big_ticket, kind="email", author=alice, body_html="<p>News</p>"
    )
    assert message.fanout_total >= FOLLOWERS and message.is_fanning_out
    assert not OutgoingRecipient.objects.exists() and contact_rows(message) == 0
    handled = fanout.fan_out_message(message_id=message.pk, chunk=50)
    message.refresh_from_db()
    assert handled == message.fanout_done == message.fanout_total
    assert not message.is_fanning_out
    mailed = mailed_addresses()
    assert len([a for a in mailed if a.endswith("@customers.example")]) == FOLLOWERS
    assert max(mailed.values()) == 1
    assert contact_rows(message) == FOLLOWERS
    assert Notification.objects.filter(message=message, user=bob).count() == 1
    assert not Notification.objects.filter(message=message, user=alice).exists()


def test_a_killed_fan_out_resumes_after_its_last_chunk(big_ticket, alice):  # noqa: ANN001
    """Two chunks written, then the task dies: the next run does the rest only."""
    message = post_message(
        record=big_ticket, kind="email", author=alice, body_html="<p>News</p>"
    )
    assert fanout._fan_out_chunk(message.pk, 50) == 50
    assert fanout._fan_out_chunk(message.pk, 50) == 50
    message.refresh_from_db()
    assert message.fanout_done == 100 and message.is_fanning_out
    fanout.fan_out_message(message_id=message.pk, chunk=50)
    mailed = mailed_addresses()
    assert max(mailed.values()) == 1
    assert len([a for a in mailed if a.endswith("@customers.example")]) == FOLLOWERS


def test_the_feed_shows_the_fan_out_progress(client, big_ticket, alice):  # noqa: ANN001
    """While the task runs, the message says how far it got."""
    message = post_message(
        record=big_ticket, kind="email", author=alice, body_html="<p>News</p>"
    )
    fanout._fan_out_chunk(message.pk, 50)
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(big_ticket)
    html = client.get(reverse("feed:panel", args=[ct.pk, big_ticket.pk])).content
    assert f"Telling {message.fanout_total} followers: 50 done".encode() in html


def test_followers_not_subscribed_are_passed_over_without_ending_the_fan_out(
    big_ticket, alice, bob
):  # noqa: ANN001
    """Chunks are ranges of followers: one holding only followers who unsubscribed
    from the post's subtype mails nobody and the next chunk still runs; each
    subscribed follower gets one mail, the others none, a killed run resumes."""
    followers = Follower.objects.filter(object_id=big_ticket.pk).order_by("id")
    ids = list(followers.values_list("id", flat=True))
    dropped = ids[50:100] + ids[120:230:3]  # a whole chunk, then every third
    assert not followers.filter(id__in=dropped, contact__isnull=True).exists()
    Follower.subtypes.through.objects.filter(follower_id__in=dropped).delete()
    kept = followers.exclude(id__in=dropped)
    wanted = set(
        kept.filter(user__isnull=True).values_list("contact__email", flat=True)
    )
    unwanted = set(
        followers.filter(id__in=dropped).values_list("contact__email", flat=True)
    )
    message = post_message(
        record=big_ticket, kind="email", author=alice, body_html="<p>News</p>"
    )
    assert message.fanout_total == kept.count()  # the users too (alice, bob)
    assert fanout._fan_out_chunk(message.pk, 50) == 50
    assert fanout._fan_out_chunk(message.pk, 50) == 0  # the unsubscribed chunk
    fanout.fan_out_message(message_id=message.pk, chunk=50)
    message.refresh_from_db()
    assert message.fanout_done == message.fanout_total and not message.is_fanning_out
    mailed = mailed_addresses()
    assert max(mailed.values()) == 1
    assert wanted <= set(mailed) and not unwanted & set(mailed)
    bulk_made = {a for a in wanted if a.endswith("@customers.example")}
    assert contact_rows(message) == len(bulk_made) == FOLLOWERS - len(dropped)
    assert Notification.objects.filter(message=message, user=bob).count() == 1


def test_a_contacts_recipient_row_is_the_one_keywords_would_build(db):
    """The fan-out's row per contact, built from positional values (the cheap
    path), has every value of the row built with keywords, its message cached."""
    from feed.recipients import _contact_row
    from knowlix.models import Contact

    message = Message(pk=41)
    contact = Contact(pk=7, name="N" * 250, email="dana@customer.example")
    row = _contact_row(message, contact)
    want = MessageRecipient(
        message=message, address=contact.email, name="N" * 200, contact_id=7
    )
    fields = [f.attname for f in MessageRecipient._meta.concrete_fields]
    assert [getattr(row, f) for f in fields] == [getattr(want, f) for f in fields]
    assert row.message is message and row._state.adding and row.pk is None
