"""A server is due on every beat tick its interval allows (polls were 120 s apart
for a 1-minute interval: each waited one extra tick). The real schedule is timed
end to end in tests/deploy/test_stack.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from knowlix.celery import app
from mailservers.models import IncomingServer
from mailservers.services import incoming as service

pytestmark = pytest.mark.django_db


def test_beat_asks_every_minute():
    """The tick that decides which servers are due runs every 60 s."""
    entry = app.conf.beat_schedule["poll-incoming-servers"]
    assert entry["schedule"] == 60.0


@pytest.mark.parametrize(
    ("started_ago", "due"),
    [(0, False), (25, False), (35, True), (55, True), (60, True), (90, True)],
)
def test_one_minute_server_is_due_at_the_next_tick(
    dovecot_user, make_incoming_server, started_ago, due
):
    """A poll started a few seconds after a tick is due again at the next one."""
    server = make_incoming_server(dovecot_user, poll_interval_minutes=1)
    server.last_poll_at = timezone.now() - dt.timedelta(seconds=started_ago)
    assert server.is_due is due


def test_five_minute_server_waits_five_ticks(dovecot_user, make_incoming_server):
    """Half a tick of slack never makes a longer interval one tick shorter."""
    server = make_incoming_server(dovecot_user, poll_interval_minutes=5)
    server.last_poll_at = timezone.now() - dt.timedelta(seconds=4 * 60 + 5)
    assert not server.is_due
    server.last_poll_at = timezone.now() - dt.timedelta(seconds=5 * 60 - 5)
    assert server.is_due


def test_interval_runs_from_the_start_of_the_poll(dovecot_user, make_incoming_server):
    """last_poll_at records when the poll started, not when it ended."""
    server = make_incoming_server(dovecot_user, poll_interval_minutes=1)
    service.poll_incoming_server(server=server)
    server.refresh_from_db()
    assert server.last_poll_at == server.poll_started_at
    assert server.last_poll_at <= server.last_success_at
    assert IncomingServer.objects.get(pk=server.pk).poll_token == ""
