"""An SMTP outage of six hours (time moved, not slept): the server is down, not the
mail. Nothing fails, no attempt is used, the admins hear after 15 minutes and when it
is back, and then everything goes out by itself, once."""

from __future__ import annotations

import email
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from feed.models import Notification
from knowlix import params
from mailservers.models import OutgoingMail, OutgoingServerHealth
from mailservers.outage_notices import notify_server_outages
from mailservers.services import outbox
from tests.mailservers.queue_helpers import queue_numbered

pytestmark = pytest.mark.django_db
COUNT = 30


def notices(user) -> list[str]:  # noqa: ANN001
    rows = Notification.objects.filter(user=user).order_by("id")
    return [n.message.subject for n in rows.select_related("message")]


def beat() -> None:
    """What beat runs every minute or so."""
    outbox.process_outbox()
    outbox.sweep_queue()
    notify_server_outages()


def test_six_hour_outage_then_everything_goes_out(settings, smtp_server, admin_user):  # noqa: ANN001
    """Refused connections for six hours, then the server is back: all sent once."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    settings.KNOWLIX_SMTP_TIMEOUT = 5
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    smtp_server.stop_listening()  # connections are refused from now on
    queue_numbered(COUNT, subject="Outage")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        while timezone.now() < start + timedelta(hours=6):
            beat()
            down_for = timezone.now() - start
            down_notice = "Outgoing mail server Default server is down"
            assert (down_notice in notices(admin_user)) == (
                down_for >= timedelta(minutes=15)
            )
            clock.shift(timedelta(minutes=5))
        health = OutgoingServerHealth.objects.get(key="default")
        assert health.is_down and health.failures >= 10
        assert "refused the connection" in health.last_error
        assert smtp_server.received == []
        mails = OutgoingMail.objects.filter(subject__startswith="Outage")
        assert set(mails.values_list("state", "attempts")) == {
            (OutgoingMail.State.DEFERRED, 0)
        }  # waiting, not failed, no attempt used
        assert all("goes out by itself" in m.last_error for m in mails)

        smtp_server.listen_again()
        for _minute in range(31):  # the probe comes within the backoff's cap
            clock.shift(timedelta(minutes=1))
            beat()
            if smtp_server.received:
                break
        beat()
    subjects = Counter(
        email.message_from_bytes(r.raw)["Subject"] for r in smtp_server.received
    )
    assert {f"Outage {n}" for n in range(COUNT)} <= set(subjects)
    assert max(subjects.values()) == 1  # each sent exactly once
    assert set(mails.values_list("state", flat=True)) == {OutgoingMail.State.SENT}
    health.refresh_from_db()
    assert not health.is_down
    assert notices(admin_user)[-1] == "Outgoing mail server Default server is back"


def test_greeting_421_marks_the_server_down_not_the_mail(settings, smtp_server):  # noqa: ANN001
    """A 421 greeting is the server's trouble: the mail keeps its attempts."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    smtp_server.reject_next(421, "4.3.2 try again later", stage="connect")
    [mail] = queue_numbered(1)
    outbox.process_outbox()
    mail.refresh_from_db()
    assert mail.state == OutgoingMail.State.DEFERRED and mail.attempts == 0
    assert OutgoingServerHealth.objects.get(key="default").is_down
    assert smtp_server.received == []
