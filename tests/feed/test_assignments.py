"""Assigning a record or scheduling an activity for someone tells them."""

from __future__ import annotations

from feed.models import ActivityType, Notification
from feed.services import create_record, schedule_activity, update_record
from knowlix.models import Opportunity, Project, Ticket


def inbox_subjects(user) -> list[str]:
    rows = Notification.objects.filter(user=user).order_by("pk")
    return [n.message.subject for n in rows.select_related("message")]


def test_reassigning_a_ticket_notifies_the_new_assignee(alice, bob):
    """A ticket assigned to bob by alice shows in bob's inbox."""
    ticket = create_record(record=Ticket(subject="Broken"), author=alice)
    ticket.assignee = bob
    update_record(record=ticket, author=alice, changed_fields=["assignee"])
    assert any("Assignee" in s and "Bob" in s for s in inbox_subjects(bob))


def test_new_project_manager_is_notified(alice, bob):
    """Setting a project's manager notifies the manager."""
    project = create_record(record=Project(name="Move"), author=alice)
    project.manager = bob
    update_record(record=project, author=alice, changed_fields=["manager"])
    assert inbox_subjects(bob)


def test_new_owner_of_an_opportunity_is_notified(alice, bob):
    """An opportunity given to bob (its owner field) notifies him by a notice."""
    opportunity = create_record(record=Opportunity(title="Big deal"), author=alice)
    opportunity.owner = bob
    update_record(record=opportunity, author=alice, changed_fields=["owner"])
    assert inbox_subjects(bob) == [
        f"[OPP-{opportunity.pk}] Big deal was assigned to you"
    ]


def test_assigning_oneself_notifies_nobody(alice):
    """Taking a record oneself adds no notice."""
    opportunity = create_record(record=Opportunity(title="Mine"), author=alice)
    opportunity.owner = alice
    update_record(record=opportunity, author=None, changed_fields=[])
    assert inbox_subjects(alice) == []


def test_scheduled_activity_notifies_its_assignee(alice, bob):
    """An activity alice plans for bob is in bob's inbox, not in alice's."""
    ticket = create_record(record=Ticket(subject="Call back"), author=alice)
    call = ActivityType.objects.get(name="Call")
    schedule_activity(
        record=ticket,
        activity_type=call,
        assignee=bob,
        created_by=alice,
        summary="Ring",
    )
    assert any("Call for you" in s and "Ring" in s for s in inbox_subjects(bob))
    assert not any("Call for you" in s for s in inbox_subjects(alice))


def test_own_activity_notifies_nobody(alice):
    """Planning an activity for oneself adds no notice."""
    ticket = create_record(record=Ticket(subject="Self"), author=alice)
    call = ActivityType.objects.get(name="Call")
    schedule_activity(
        record=ticket, activity_type=call, assignee=alice, created_by=alice
    )
    assert not any("for you" in s for s in inbox_subjects(alice))
