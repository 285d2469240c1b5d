"""Send later: scheduled in the composer, shown and editable in the feed, sent by
the beat task when due (time moved by passing ``now``, never slept)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from feed import scheduled
from feed.models import Message, ScheduledMessage
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


def local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def post(client, ticket, **data):  # noqa: ANN001, ANN003, ANN201
    ct = ContentType.objects.get_for_model(ticket)
    values = {"kind": "email", "body": "Your invoice is ready."} | data
    return client.post(reverse("feed:post", args=[ct.pk, ticket.pk]), values, **HTMX)


@pytest.fixture
def in_an_hour(client, alice, ticket):
    """Alice schedules an email for an hour from now, through the composer."""
    client.force_login(alice)
    when = (timezone.now() + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    response = post(client, ticket, subject="Invoice", send_at=local(when))
    assert response.status_code == 200
    assert "scheduled" in response.text and "Your invoice is ready." in response.text
    return ScheduledMessage.objects.get(), when


def test_scheduled_email_leaves_when_due_and_not_before(in_an_hour, ticket, smtp):
    """Nothing leaves before its time; at its time it is posted and mailed once."""
    row, when = in_an_hour
    assert not Message.objects.filter(kind="email").exists()
    assert scheduled.send_due_messages(now=when - dt.timedelta(minutes=1)) == 0
    assert scheduled.send_due_messages(now=when) == 1
    assert scheduled.send_due_messages(now=when + dt.timedelta(minutes=5)) == 0
    message = Message.objects.get(kind="email")
    assert message.subject == "Invoice" and message.author_user == row.author
    row.refresh_from_db()
    assert (row.state, row.message) == (ScheduledMessage.State.SENT, message)
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["dana@customer.example"]]


def test_scheduled_email_can_be_edited_until_it_leaves(client, in_an_hour, ticket):
    """Edit moves it and changes its text; once sent, an edit is refused."""
    row, when = in_an_hour
    later = when + dt.timedelta(days=1)
    url = reverse("feed:scheduled-edit", args=[row.pk])
    data = {"kind": "email", "body": "Corrected invoice.", "send_at": local(later)}
    assert client.post(url, data, **HTMX).status_code == 200
    row.refresh_from_db()
    assert row.body_text == "Corrected invoice." and row.send_at == later
    assert scheduled.send_due_messages(now=when) == 0  # moved: not due any more
    assert scheduled.send_due_messages(now=later) == 1
    response = client.post(url, data, **HTMX)
    assert "Too late: this message has already left" in response.text


def test_scheduled_email_can_be_cancelled(client, in_an_hour):
    """Cancelled, it never leaves and leaves the feed."""
    row, when = in_an_hour
    response = client.post(reverse("feed:scheduled-cancel", args=[row.pk]), **HTMX)
    assert 'data-test="scheduled"' not in response.text
    assert scheduled.send_due_messages(now=when + dt.timedelta(days=1)) == 0
    assert not Message.objects.filter(kind="email").exists()


def test_reader_cannot_edit_or_cancel(client, reader, in_an_hour):
    """Changing a scheduled email needs write access to its record."""
    row, _when = in_an_hour
    client.force_login(reader)
    url = reverse("feed:scheduled-cancel", args=[row.pk])
    assert client.post(url, **HTMX).status_code == 403
    row.refresh_from_db()
    assert row.state == ScheduledMessage.State.SCHEDULED


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"send_at": "2020-01-01T10:00"}, "Choose a time in the future."),
        ({"send_at": "tomorrow"}, "Enter a valid date/time."),
        ({"kind": "note", "send_at": "2099-01-01T10:00"}, "Only an email"),
    ],
)
def test_composer_refuses_a_bad_schedule(client, alice, ticket, data, error):
    """A past time, garbage or a note: a clear error, nothing scheduled."""
    client.force_login(alice)
    response = post(client, ticket, **data)
    assert response.status_code == 422 and error in response.text
    assert not ScheduledMessage.objects.exists()
