"""An alias's (or a server's) team follows every record it creates, hears about the
mail in its inbox or by email per preference, and may be assigned the records."""

from __future__ import annotations

import pytest

from feed.models import Follower, Notification
from knowlix.models import Team, Ticket
from knowlix.users import get_profile
from mailservers.models import IncomingServer, OutgoingMail, OutgoingRecipient
from routing.services import route_incoming_messages


def new_request(n: int, to: str = "helpdesk@example.com") -> bytes:
    return (
        f"From: Customer {n} <customer{n}@client.example>\r\nTo: {to}\r\n"
        f"Subject: Printer {n} is broken\r\nMessage-ID: <team-{n}@client.example>\r\n"
        "\r\nIt does not print.\r\n"
    ).encode()


@pytest.fixture
def helpdesk_team(aliases, make_user) -> Team:
    team = Team.objects.create(name="Helpdesk")
    team.members.add(make_user("hank"), make_user("ida"), make_user("joe"))
    alias = aliases["helpdesk"]
    alias.team = team
    alias.save()
    return team


def followers_of(ticket: Ticket) -> set[str]:
    rows = Follower.objects.filter(object_id=ticket.pk, user__isnull=False)
    return {f.user.username for f in rows.select_related("user")}


def test_team_members_follow_and_get_the_mail_in_their_inbox(helpdesk_team, route):
    """Mail to helpdesk@ creates a ticket the team follows; each member's inbox has it."""
    result = route(new_request(1))
    assert result.outcome == "routed"
    ticket = Ticket.objects.get()
    assert followers_of(ticket) == {"hank", "ida", "joe"}
    for name in ("hank", "ida", "joe"):
        subjects = set(
            Notification.objects.filter(user__username=name).values_list(
                "message__subject", flat=True
            )
        )
        assert "Printer 1 is broken" in subjects


def test_member_who_prefers_email_gets_the_mail(helpdesk_team, route):
    """A member whose preference is email gets the new mail by email as well."""
    ida = helpdesk_team.members.get(username="ida")
    profile = get_profile(ida)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save()
    route(new_request(2))
    addresses = set(OutgoingRecipient.objects.values_list("address", flat=True))
    assert "ida@example.com" in addresses
    assert "hank@example.com" not in addresses
    assert OutgoingMail.objects.filter(subject__contains="Printer 2").exists()


def test_round_robin_assigns_each_member_in_turn(helpdesk_team, route):
    """Round-robin assignment gives successive tickets to each member in turn."""
    helpdesk_team.assignment = Team.Assignment.ROUND_ROBIN
    helpdesk_team.save()
    for n in range(4):
        route(new_request(10 + n))
    assignees = [t.assignee.username for t in Ticket.objects.order_by("pk")]
    assert assignees == ["hank", "ida", "joe", "hank"]


def test_default_assignee_set_in_batch_like_one_by_one(helpdesk_team, make_user):
    """The pollers' batch path gives the team's default assignee and followers too."""
    helpdesk_team.assignment = Team.Assignment.DEFAULT
    helpdesk_team.default_assignee = helpdesk_team.members.get(username="joe")
    helpdesk_team.save()
    results = route_incoming_messages(
        raws=[new_request(20 + n) for n in range(3)], source="test"
    )
    assert [r.outcome for r in results] == ["routed"] * 3
    tickets = list(Ticket.objects.order_by("pk"))
    assert [t.assignee.username for t in tickets] == ["joe"] * 3
    assert all(followers_of(t) == {"hank", "ida", "joe"} for t in tickets)
    assert Notification.objects.filter(user__username="hank").count() >= 3


def test_round_robin_in_batch(helpdesk_team):
    """The batch path moves the round-robin position once per record."""
    helpdesk_team.assignment = Team.Assignment.ROUND_ROBIN
    helpdesk_team.save()
    route_incoming_messages(raws=[new_request(30 + n) for n in range(3)], source="t")
    assignees = [t.assignee.username for t in Ticket.objects.order_by("pk")]
    assert assignees == ["hank", "ida", "joe"]


def test_server_default_team_follows_its_records(aliases, make_user, route):
    """Mail that matches no alias takes the incoming server's default action and
    team, one by one and in the pollers' batch."""
    team = Team.objects.create(name="Support", assignment=Team.Assignment.ROUND_ROBIN)
    team.members.add(make_user("kim"))
    server = IncomingServer.objects.create(
        name="Support mailbox",
        host="imap.example.com",
        username="support@mailbox.example",
        default_team=team,
    )
    result = route(new_request(40, to="support@mailbox.example"), server=server)
    assert result.outcome == "routed"
    results = route_incoming_messages(
        raws=[new_request(41, to="support@mailbox.example")],
        source="imap",
        server=server,
    )
    assert [r.outcome for r in results] == ["routed"]
    tickets = list(Ticket.objects.order_by("pk"))
    assert len(tickets) == 2
    assert all(followers_of(t) == {"kim"} for t in tickets)
    assert all(t.assignee.username == "kim" for t in tickets)


def test_inactive_member_is_left_out(helpdesk_team, route):
    """A deactivated member neither follows nor is assigned."""
    helpdesk_team.members.filter(username="ida").update(is_active=False)
    helpdesk_team.assignment = Team.Assignment.ROUND_ROBIN
    helpdesk_team.save()
    route(new_request(50))
    route(new_request(51))
    tickets = list(Ticket.objects.order_by("pk"))
    assert [t.assignee.username for t in tickets] == ["hank", "joe"]
    assert "ida" not in followers_of(tickets[0])


def test_ticket_created_by_mail_has_the_mail_body_as_description(aliases, route):
    """The first mail's text becomes the ticket's description."""
    route(new_request(60))
    assert Ticket.objects.get().description == "It does not print."


def test_opportunity_description_from_html_only_mail(aliases, route):
    """An HTML-only mail to sales@ gives its text as the opportunity's description."""
    from knowlix.models import Opportunity

    raw = (
        b"From: Buyer <buyer@client.example>\r\nTo: sales@example.com\r\n"
        b"Subject: 150 carpets\r\nMessage-ID: <opp-1@client.example>\r\n"
        b"Content-Type: text/html\r\n\r\n<p>We need <b>150</b> carpets.</p>\r\n"
    )
    route(raw)
    assert Opportunity.objects.get().description.strip() == "We need 150 carpets."
