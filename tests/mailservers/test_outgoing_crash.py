"""A draining worker process is killed mid-batch: nothing is sent twice or dropped.

The loopback SMTP server (its own process) stores the 51st mail but never answers
it, so the worker is surely blocked with that mail in flight and some delivered ones
not yet written; it is then killed with SIGKILL. Recovery and a second drain must
send every other mail once, and fail (never re-send) the few that may have left.
"""

from __future__ import annotations

import email
import os
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
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from feed.services import post_message
from knowlix import params
from knowlix.users import get_profile
from mailservers.models import OutgoingMail, OutgoingRecipient
from mailservers.services import outbox
from mailservers.services.outgoing import MailRecipient, queue_mail
from tests.mailservers.test_outgoing_concurrency import database_url
from tests.servers.smtp import SmtpServerProcess

ROOT = Path(__file__).resolve().parents[2]
STALL_AT = 51  # the mail in flight when the worker dies
COUNT = 300  # a first batch of 200 (BATCH_SIZE), then 100 more
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
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    for n in range(COUNT):
        queue_mail(
            from_address="alice@catchall.test",
            recipients=[MailRecipient(f"r{n}@customer.test")],
            subject=f"Mail {n}",
            body_text=f"Body {n}",
            send_now=False,
        )
    kill_worker_with_mail_in_flight(stalling_smtp)
    in_flight = received_ids(stalling_smtp)[-1]
    assert OutgoingMail.objects.filter(state=State.SENDING).exists()

    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{stalling_smtp.port}"
    assert outbox.recover_stuck_mail(older_than=timedelta(0)) > 0
    outbox.process_outbox()

    received = Counter(received_ids(stalling_smtp))
    assert max(received.values()) == 1  # nothing sent twice
    mails = {m.message_id: m for m in OutgoingMail.objects.defer("raw")}
    states = Counter(m.state for m in mails.values())
    assert states == {
        State.SENT: COUNT - outbox.UNCERTAIN_SPAN,
        State.FAILED: outbox.UNCERTAIN_SPAN,
    }
    for message_id, mail in mails.items():  # nothing dropped: sent, or visibly not
        if mail.state == State.SENT:
            assert received[message_id] == 1
        else:
            assert "cannot tell whether it left" in mail.last_error
            rcpt = mail.recipients.get()
            assert rcpt.state == RState.FAILED and rcpt.last_error == mail.last_error
    assert mails[in_flight].state == State.FAILED  # delivered, its 250 never came
    page = tech.get(reverse("mailservers:queue") + "?state=failed").content.decode()
    assert "cannot tell whether it left" in page

    # Someone checked: the uncertain mail that never arrived is retried, once.
    missing = [
        m for i, m in mails.items() if m.state == State.FAILED and not received[i]
    ]
    assert missing
    for mail in missing:
        assert reverse("mailservers:queue-retry", args=[mail.pk]) in page
        tech.post(reverse("mailservers:queue-retry", args=[mail.pk]))
    outbox.process_outbox()
    received = Counter(received_ids(stalling_smtp))
    assert max(received.values()) == 1
    for mail in missing:
        mail.refresh_from_db()
        assert mail.state == State.SENT and received[mail.message_id] == 1


@pytest.mark.django_db
def test_feed_shows_mail_that_may_have_left(client: Client, alice, ticket) -> None:  # noqa: ANN001
    """The feed shows a possibly-sent mail as failed, with the reason to check."""
    post_message(record=ticket, kind="email", author=alice, body_html="hi")
    _server, ids = outbox._claim(server_id=None, limit=10)  # a worker claims, dies
    OutgoingMail.objects.filter(pk__in=ids).update(
        claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert outbox.recover_stuck_mail() == 1
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    html = client.get(reverse("feed:panel", args=[ct.pk, ticket.pk])).content.decode()
    assert 'badge badge-err">failed<' in html
    assert "cannot tell whether it left" in html
