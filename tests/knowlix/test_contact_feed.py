"""A contact's page lists their messages across records, only records one may see."""

from __future__ import annotations

from feed import services
from feed.models import Message
from feed.services import create_record
from knowlix.models import Opportunity, Ticket


def test_contact_page_lists_messages_from_and_to_them(client, alice, contact, ticket):
    """Mail sent to the contact on a ticket and mail from them on an opportunity
    both show, each linking to its record."""
    client.force_login(alice)
    opportunity = create_record(
        record=Opportunity(title="Carpets", contact=contact), author=alice
    )
    services.post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>Fixed?</p>"
    )
    services.post_message(
        record=opportunity,
        kind=Message.Kind.EMAIL,
        direction=Message.Direction.INCOMING,
        author_contact=contact,
        body_text="We want 150 carpets",
        subject="Carpets",
    )
    services.post_message(
        record=ticket, kind=Message.Kind.NOTE, author=alice, body_html="<p>Internal</p>"
    )
    html = client.get(contact.get_absolute_url()).content.decode()
    assert "Fixed?" in html and "We want 150 carpets" in html
    assert "Internal" not in html  # not to or from the contact
    assert f"{ticket.get_absolute_url()}?message=" in html
    assert f"{opportunity.get_absolute_url()}?message=" in html


def test_contact_feed_hides_records_the_user_may_not_see(client, make_user, contact,
                                                         alice):  # fmt: skip
    """A user who may see contacts but not tickets sees no ticket mail."""
    from django.contrib.auth.models import Permission

    viewer = make_user("viewer", group=None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_contact"))
    ticket = create_record(
        record=Ticket(subject="Secret", contact=contact), author=alice
    )
    services.post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>Hush</p>"
    )
    client.force_login(viewer)
    html = client.get(contact.get_absolute_url()).content.decode()
    assert "Hush" not in html and "No messages from or to this contact yet." in html
