"""``post_messages``: many posts at once, each as ``post_message`` would post it."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from feed.models import Message, MessageRecipient, Notification
from feed.services import NewPost, post_messages
from knowlix.models import Contact


def test_a_later_post_sees_the_contact_an_earlier_one_created(ticket, alice, contact):
    """An outgoing email makes a contact of a new address; a received mail of the
    same call naming that address links it, as two separate posts would."""
    sent, received = post_messages(
        [
            NewPost(
                record=ticket,
                kind="email",
                author=alice,
                body_text="Adding Xavier.",
                recipients=["Xavier <xavier@new.example>"],
            ),
            NewPost(
                record=ticket,
                kind="email",
                direction="in",
                author_contact=contact,
                body_text="Thanks!",
                recipients=["xavier@new.example"],
                message_id="<thanks-1@customer.example>",
            ),
        ]
    )
    xavier = Contact.objects.get(email_normalized="xavier@new.example")
    assert MessageRecipient.objects.get(message=sent, contact=xavier)
    row = MessageRecipient.objects.get(message=received, address="xavier@new.example")
    assert row.contact == xavier


def test_notes_of_one_call_notify_like_separate_posts(ticket, alice, bob):
    """Each post of a call notifies its followers and @mentions as a post of its own
    would, with one insert per table for all of them (the followers of an existing
    record are still read for each post: a post may change them)."""

    def posts() -> list[NewPost]:
        return [
            NewPost(record=ticket, kind="note", author=alice, body_text=f"@bob see {n}")
            for n in range(10)
        ]

    with CaptureQueriesContext(connection) as separately:
        one_by_one = [post_messages([post])[0] for post in posts()]
    with CaptureQueriesContext(connection) as together:
        batched = post_messages(posts())
    for messages in (one_by_one, batched):
        assert [
            list(Notification.objects.filter(message=m).values_list("user", flat=True))
            for m in messages
        ] == [[bob.pk]] * 10
    assert len(together) < len(separately) / 2
    assert Message.objects.filter(kind="note").count() == 20


def test_a_posted_message_holds_its_record(ticket, alice):
    """Its record is stored by content type and id, and held: reading it back
    from the message costs no query."""
    (message,) = post_messages(
        [NewPost(record=ticket, kind="note", author=alice, body_text="Held.")]
    )
    with CaptureQueriesContext(connection) as queries:
        assert message.content_object is ticket
    assert not queries.captured_queries
    stored = Message.objects.get(pk=message.pk)
    assert stored.content_object == ticket
    assert (stored.content_type.model, stored.object_id) == ("ticket", ticket.pk)
