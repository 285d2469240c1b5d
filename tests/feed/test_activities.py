"""Activities: defaults, states, My activities, the daily digest."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from feed import digests, selectors, services
from feed.defaults import ensure_default_data
from feed.models import Activity, ActivityDigest, ActivityType, Follower, Subtype
from feed.services import records as record_services
from knowlix.models import Opportunity
from mailservers.models import OutgoingMail

pytestmark = pytest.mark.django_db


def schedule(record, user, name="To-Do", **kw):
    return services.schedule_activity(
        record=record,
        activity_type=ActivityType.objects.get(name=name),
        assignee=user,
        created_by=user,
        **kw,
    )


def test_default_data_is_idempotent(groups):
    """Running the set-up twice keeps one of each subtype and activity type."""
    ensure_default_data()
    ensure_default_data()
    assert Subtype.objects.count() == 6  # with "Mailings"
    assert sorted(ActivityType.objects.values_list("name", flat=True)) == [
        "Call",
        "Email",
        "Meeting",
        "To-Do",
        "Upload document",
    ]


def test_due_date_defaults_to_type_delay(ticket, alice):
    """Without a due date, the type's default delay applies."""
    activity = schedule(ticket, alice, "Meeting")
    assert activity.due_date == timezone.localdate() + dt.timedelta(days=3)


def test_state_from_due_date(ticket, alice):
    """Overdue before today, today, planned after."""
    today = dt.date(2026, 5, 10)
    activity = schedule(ticket, alice, due_date=today)
    assert activity.state_on(today) == Activity.State.TODAY
    assert activity.state_on(today + dt.timedelta(days=1)) == Activity.State.OVERDUE
    assert activity.state_on(today - dt.timedelta(days=1)) == Activity.State.PLANNED


def test_assignee_follows_the_record(ticket, alice, bob):
    """Scheduling for bob makes him follow the record."""
    schedule(ticket, bob)
    assert ticket.pk in Follower.objects.filter(user=bob).values_list(
        "object_id", flat=True
    )


def test_mark_done_posts_and_removes(ticket, alice, bob):
    """Done: an Activities message with the feedback, notified, activity gone."""
    services.follow(record=ticket, user=bob)
    activity = schedule(ticket, alice, "Call", summary="Call Dana", note="<p>ask</p>")
    message = services.mark_activity_done(
        activity=activity, user=alice, feedback="Dana <is> happy"
    )
    assert not Activity.objects.exists()
    assert message.subtype.code == Subtype.ACTIVITY
    assert "Call done: Call Dana" in message.body_text
    assert "Dana &lt;is&gt; happy" in message.body_html
    assert message.notifications.get().user == bob


def test_my_activities_groups_across_record_kinds(client, alice, ticket):
    """Alice's page groups her activities on tickets and opportunities by state."""
    today = timezone.localdate()
    opportunity = record_services.create_record(
        record=Opportunity(title="Big deal"), author=alice
    )
    schedule(ticket, alice, due_date=today - dt.timedelta(days=1), summary="late one")
    schedule(opportunity, alice, due_date=today, summary="today one")
    schedule(opportunity, alice, due_date=today + dt.timedelta(days=5), summary="later")
    groups = {
        g.state: [a.summary for a in g.activities]
        for g in selectors.my_activities(user=alice)
    }
    assert groups == {
        "overdue": ["late one"],
        "today": ["today one"],
        "planned": ["later"],
    }
    client.force_login(alice)
    page = client.get(reverse("feed:my-activities")).content.decode()
    assert "late one" in page and "Big deal" in page


def test_my_activities_hides_records_no_longer_visible(alice, carol, ticket):
    """An activity assigned to someone without access to the record is not listed."""
    schedule(ticket, carol)
    assert all(not g.activities for g in selectors.my_activities(user=carol))


def test_done_from_my_activities_returns_there(client, alice, ticket):
    """Mark done on My activities comes back to the page."""
    activity = schedule(ticket, alice)
    client.force_login(alice)
    response = client.post(
        reverse("feed:activity-done", args=[activity.pk]),
        {"feedback": "", "next": "my-activities"},
    )
    assert response["Location"] == reverse("feed:my-activities")
    assert not Activity.objects.exists()


def test_digest_once_per_day_for_email_users(alice, bob, ticket, prefers_email):
    """Only users preferring email get a digest, once a day, with what is due."""
    today = timezone.localdate()
    prefers_email(alice)
    schedule(ticket, alice, due_date=today, summary="Send quote")
    schedule(ticket, alice, due_date=today + dt.timedelta(days=9), summary="Not yet")
    schedule(ticket, bob, due_date=today, summary="Bob's task")
    assert digests.send_activity_digests(today=today) == 1
    assert digests.send_activity_digests(today=today) == 0
    mail = OutgoingMail.objects.get()
    assert [r.address for r in mail.recipients.all()] == ["alice@example.com"]
    raw = bytes(mail.raw)
    assert b"Send quote" in raw and b"Not yet" not in raw
    assert ActivityDigest.objects.get().activity_count == 1


def test_digest_task_is_registered():
    """The beat entry points at a real task."""
    from feed.tasks import send_activity_digests
    from knowlix.celery import app

    entry = app.conf.beat_schedule["activity-digest"]
    assert entry["task"] == send_activity_digests.name
