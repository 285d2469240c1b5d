"""A draining worker process is killed mid-batch: nothing is sent twice or dropped,
nothing stays stuck, and at most one mail is "cannot tell".

The loopback SMTP server (its own process) stores the 51st mail but never answers
it, so the worker is surely blocked with that mail in flight; it is then killed
with SIGKILL. ``process_outbox --recover`` right away hands back the dead worker's
claim (its process is gone), and a second drain sends every other mail once; only
the mail in flight fails (never re-sent), and its Retry warns first.
"""

from __future__ import annotations

import email
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from feed.services import post_message
from knowlix.users import get_profile
from mailservers.models import OutboxClaim, OutgoingMail, OutgoingRecipient
from mailservers.services import outbox
from tests.mailservers.queue_helpers import queue_numbered
from tests.mailservers.test_outgoing_concurrency import database_url
from tests.servers.smtp import SmtpServerProcess

ROOT = Path(__file__).resolve().parents[2]
STALL_AT = 51  # the mail in flight when the worker dies
COUNT = 300
BATCH = min(COUNT, outbox.BATCH_SIZE)  # the batch that dies
State, RState = OutgoingMail.State, OutgoingRecipient.State


@pytest.fixture
def stalling_smtp(tmp_path: Path) -> Iterator[SmtpServerProcess]:
    """A plain SMTP server process that never answers the DATA of mail 51."""
    server = SmtpServerProcess(tmp_path / "spool", stall_at=STALL_AT).start()
    yield server
    server.stop()


@pytest.fixture
def tech(client: Client, admin_user) -> Client:  # noqa: ANN001
    """A client logged in as an admin in developer mode (the Email queue page)."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save()
    client.force_login(admin_user)
    return client


def received_ids(server: SmtpServerProcess) -> list[str]:
    return [email.message_from_bytes(r.raw)["Message-ID"] for r in server.received]


def kill_worker_with_mail_in_flight(server: SmtpServerProcess) -> None:
    """Run ``manage.py process_outbox`` until mail 51 is in flight, then SIGKILL it."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "knowlix.settings",
        "DATABASE_URL": database_url(),
        "KNOWLIX_SMTP_URL": f"smtp://127.0.0.1:{server.port}",
        "KNOWLIX_SMTP_TIMEOUT": "600",  # blocked on the reply until killed
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "process_outbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while len(list(server.spool.glob("*.json"))) < STALL_AT:
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.kill()
            raise RuntimeError(
                f"the worker never reached mail 51: {worker.communicate()}"
            )
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL


@pytest.mark.django_db(transaction=True)
def test_killed_worker_sends_nothing_twice_and_drops_nothing(
    stalling_smtp: SmtpServerProcess,
    settings,
    tech: Client,  # noqa: ANN001
) -> None:
    """Kill mid-batch, recover, drain: each mail received at most once, none lost."""
    queue_numbered(COUNT)
    kill_worker_with_mail_in_flight(stalling_smtp)
    in_flight = received_ids(stalling_smtp)[-1]
    assert OutgoingMail.objects.filter(state=State.SENDING).exists()
    # The claim names the mail whose content was on its way: the 51st.
    assert OutboxClaim.objects.get().data_position == STALL_AT - 1

    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{stalling_smtp.port}"
    out = io.StringIO()
    call_command("process_outbox", "--recover", stdout=out)  # at once: owner gone
    recovered = re.search(r"recovered (\d+) stuck", out.getvalue())
    assert recovered and int(recovered[1]) >= BATCH - STALL_AT + 1
    assert not OutboxClaim.objects.exists()

    received = Counter(received_ids(stalling_smtp))
    assert max(received.values()) == 1  # nothing sent twice
    mails = {m.message_id: m for m in OutgoingMail.objects.defer("raw")}
    states = Counter(m.state for m in mails.values())
    assert states == {State.SENT: COUNT - 1, State.FAILED: 1}  # one uncertain
    for message_id, mail in mails.items():  # nothing dropped: sent, or visibly not
        if mail.state == State.SENT:
            assert received[message_id] == 1
        else:
            assert "cannot tell whether it left" in mail.last_error
            rcpt = mail.recipients.get()
            assert rcpt.state == RState.FAILED and rcpt.last_error == mail.last_error
    uncertain = mails[in_flight]
    assert uncertain.state == State.FAILED  # delivered, its 250 never came
    assert uncertain.uncertain and uncertain.smtp_stage == OutgoingMail.Stage.DATA
    page = tech.get(reverse("mailservers:queue") + "?state=failed").content.decode()
    assert "cannot tell whether it left" in page
    assert "May already have arrived" in page and "Retry anyway" in page

    # A Retry without the confirmation only warns; nothing is sent twice.
    retry = reverse("mailservers:queue-retry", args=[uncertain.pk])
    answer = tech.post(retry, follow=True).content.decode()
    assert "may already have arrived" in answer
    uncertain.refresh_from_db()
    assert uncertain.state == State.FAILED
    outbox.process_outbox()
    assert Counter(received_ids(stalling_smtp))[in_flight] == 1


@pytest.mark.django_db
def test_feed_shows_mail_that_may_have_left(client: Client, alice, ticket) -> None:  # noqa: ANN001
    """The feed shows a possibly-sent mail as failed, with the reason to check."""
    post_message(record=ticket, kind="email", author=alice, body_html="hi")
    claim = outbox._claim(server_id=None, limit=10)  # a worker claims, dies
    OutboxClaim.objects.filter(token=claim.token).update(  # in flight, lease over
        data_position=0, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.recover_stuck_mail() == 1
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    html = client.get(reverse("feed:panel", args=[ct.pk, ticket.pk])).content.decode()
    assert 'badge badge-err">failed<' in html
    assert "cannot tell whether it left" in html
