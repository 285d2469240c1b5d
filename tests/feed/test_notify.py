"""Who is notified how: followers, subtypes, preferences, mentions, contacts."""

from __future__ import annotations

import pytest

from feed import services
from feed.models import Follower, Message, MessageRecipient, Notification, Subtype
from knowlix.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_on(ticket):
    """Post on the ticket (mail is queued in the same transaction)."""

    def do(**kw):
        return services.post_message(record=ticket, **kw)

    return do


@pytest.fixture
def bob_follows(ticket, bob):
    services.follow(record=ticket, user=bob)
    return bob


def notified(message):
    return {n.user.username: n.is_emailed for n in message.notifications.all()}


def test_note_notifies_follower_in_inbox_only(post_on, alice, bob_follows, queued):
    """An inbox-preferring follower gets an inbox notification and no email."""
    message = post_on(kind="note", author=alice, body_html="<p>internal</p>")
    assert notified(message) == {"bob": False}
    assert queued() == []


def test_note_emails_follower_who_prefers_email(
    post_on, alice, bob_follows, prefers_email, queued
):
    """A follower who prefers email is notified in the inbox and by email."""
    prefers_email(bob_follows)
    message = post_on(kind="note", author=alice, body_html="<p>internal</p>")
    assert notified(message) == {"bob": True}
    assert queued() == [(message, ["bob@example.com"], True)]


def test_note_never_emails_contacts(post_on, alice, ticket, contact, queued):
    """The record's contact follows, yet a note never leaves Knowlix."""
    assert Follower.objects.filter(contact=contact).exists()
    message = post_on(kind="note", author=alice, body_html="<p>secret margin</p>")
    assert message.is_internal
    assert queued() == []
    assert not MessageRecipient.objects.filter(
        message=message, contact=contact
    ).exists()


def test_email_goes_to_contact_and_notifies_users(
    post_on, alice, bob_follows, contact, queued
):
    """An outgoing email reaches the contact; colleagues get an inbox notification."""
    message = post_on(kind="email", author=alice, body_html="<p>Hello Dana</p>")
    assert queued() == [(message, ["dana@customer.example"], False)]
    assert notified(message) == {"bob": False}
    row = MessageRecipient.objects.get(message=message)
    assert (row.address, row.contact) == ("dana@customer.example", contact)


def test_email_by_email_preferring_user_goes_separately(
    post_on, alice, bob_follows, prefers_email, queued
):
    """Users who prefer email get their own copy, apart from the customers' mail."""
    prefers_email(bob_follows)
    message = post_on(kind="email", author=alice, body_html="<p>Hi</p>")
    assert (message, ["dana@customer.example"], False) in queued()
    assert (message, ["bob@example.com"], True) in queued()


def test_author_is_not_notified(post_on, alice, prefers_email, queued):
    """Writing a message never notifies its own author."""
    prefers_email(alice)
    message = post_on(kind="note", author=alice, body_html="<p>to myself</p>")
    assert notified(message) == {}
    assert queued() == []


def test_mention_notifies_user_who_may_see_record(post_on, alice, reader, queued):
    """@reader (not a follower, may view) is notified of the note."""
    message = post_on(kind="note", author=alice, body_html="<p>@reader look</p>")
    assert notified(message) == {"reader": False}


def test_mention_of_outsider_notifies_nobody(post_on, alice, carol):
    """@carol has no permission on tickets: no notification leaks the note."""
    message = post_on(kind="note", author=alice, body_html="<p>cc @carol</p>")
    assert notified(message) == {}


def test_unsubscribed_subtype_is_not_notified(post_on, ticket, alice, bob):
    """Bob follows Discussions only: notes do not reach him, emails do."""
    services.follow(
        record=ticket, user=bob, subtypes=[Subtype.objects.get(code="discussion")]
    )
    note = post_on(kind="note", author=alice, body_html="<p>n</p>")
    email = post_on(kind="email", author=alice, body_html="<p>e</p>")
    assert notified(note) == {}
    assert notified(email) == {"bob": False}


def test_added_recipients_become_following_contacts(post_on, ticket, alice, queued):
    """Extra addresses of an email become contacts that follow the record."""
    message = post_on(
        kind="email",
        author=alice,
        body_html="<p>Hi</p>",
        recipients=["Erin Buyer <erin@buyer.example>"],
    )
    erin = Contact.objects.get(email_normalized="erin@buyer.example")
    assert erin.name == "Erin Buyer"
    assert Follower.objects.filter(contact=erin, object_id=ticket.pk).exists()
    # Dana (a follower) gets her own mail; the typed address gets the typed one.
    assert queued() == [
        (message, ["dana@customer.example"], False),
        (message, ["erin@buyer.example"], False),
    ]


def test_incoming_email_notifies_users_not_its_author(
    post_on, ticket, alice, bob_follows, contact, make_contact, queued
):
    """A customer's reply notifies colleagues, reaches other contacts, not its author."""
    other = make_contact(name="Finn", email="finn@customer.example")
    services.follow(record=ticket, contact=other)
    message = post_on(
        kind="email",
        direction="in",
        author_contact=contact,
        email_from="Dana <dana@customer.example>",
        message_id="<abc@customer.example>",
        recipients=["support@example.com", "Finn <finn@customer.example>"],
        body_text="Still on fire.",
    )
    assert notified(message) == {"alice": False, "bob": False}
    assert queued() == []  # finn was already a To/Cc of the original mail
    rows = set(
        MessageRecipient.objects.filter(message=message).values_list(
            "address", "contact"
        )
    )
    assert rows == {("support@example.com", None), ("finn@customer.example", other.pk)}
    assert message.body_html == "<p>Still on fire.</p>"


def test_known_cc_contact_starts_following(post_on, ticket, contact, make_contact):
    """A known contact in Cc of a customer's mail follows; unknown addresses do not."""
    gina = make_contact(name="Gina", email="gina@customer.example")
    post_on(
        kind="email",
        direction="in",
        author_contact=contact,
        message_id="<cc@customer.example>",
        recipients=["Gina <GINA@customer.example>", "stranger@else.example"],
        body_text="see cc",
    )
    followers = Follower.objects.filter(object_id=ticket.pk, contact__isnull=False)
    assert {f.contact for f in followers} == {contact, gina}
    assert not Contact.objects.filter(email_normalized="stranger@else.example").exists()


def test_reply_to_internal_note_stays_internal(post_on, ticket, alice, contact, queued):
    """An incoming reply whose parent is a note is internal and is not relayed."""
    note = post_on(kind="note", author=alice, body_html="<p>n</p>")
    reply = post_on(
        kind="email",
        direction="in",
        author_contact=contact,
        parent=note,
        message_id="<r@customer.example>",
        body_text="reply",
    )
    assert reply.is_internal
    assert reply.subtype.code == "note"
    assert queued() == []


def test_stage_change_notifies_users_only(ticket, alice, bob_follows, queued):
    """A tracked change is posted and notified to users, never mailed to contacts."""
    from feed.services import records as record_services

    ticket.stage = ticket.Stage.SOLVED
    record_services.update_record(record=ticket, author=alice, changed_fields=["stage"])
    message = Message.objects.filter(subtype__code="stage").get()
    assert "Solved" in message.body_text
    assert notified(message) == {"bob": False}
    assert queued() == []


def test_rolled_back_post_queues_nothing(ticket, alice, bob, prefers_email, queued):
    """Mail is queued on commit only: an aborted transaction emails nobody."""
    from django.db import transaction

    prefers_email(bob)
    services.follow(record=ticket, user=bob)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.post_message(record=ticket, kind="email", author=alice, body_html="x")
        raise RuntimeError("abort")
    assert queued() == []
    assert not Notification.objects.filter(user=bob).exists()


@pytest.mark.parametrize("preference", ["inbox", "email"])
@pytest.mark.parametrize(
    ("kind", "subtype", "contact_mailed"),
    [
        ("email", None, True),
        ("note", None, False),
        ("notification", "stage", False),
        ("notification", "activity", False),
        ("notification", "created", False),
    ],
)
def test_notification_matrix(
    post_on,
    alice,
    bob_follows,
    contact,
    queued,
    preference,
    kind,
    subtype,
    contact_mailed,
):
    """Every kind × preference: bob always in the inbox, by email only if he chose
    email; the contact only ever receives real emails."""
    from knowlix.users import get_profile

    profile = get_profile(bob_follows)
    profile.notify_by = preference
    profile.save(update_fields=["notify_by"])
    message = post_on(kind=kind, subtype=subtype, author=alice, body_html="<p>x</p>")
    assert notified(message) == {"bob": preference == "email"}
    mails = {tuple(addresses): for_users for _m, addresses, for_users in queued()}
    assert (("bob@example.com",) in mails) == (preference == "email")
    assert (("dana@customer.example",) in mails) == contact_mailed
