"""A Celery worker is SIGKILLed mid-drain: its claim goes back within a minute, by
beat, and at most one mail is "cannot tell".

The worker's claim is made to look as if it ran on another machine (where nobody
can check its process), so only its lease can free it: the lease must end within a
minute of the kill. The minute is moved on the claim row (the lease is timed by the
database's clock), not slept. Beat's task then runs in a second real worker.
"""

from __future__ import annotations

import email
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import F
from django.utils import timezone

from mailservers.models import OutboxClaim, OutgoingMail
from mailservers.services import outbox
from mailservers.tasks.outgoing import process_outbox, recover_stuck_mail
from tests.mailservers.queue_helpers import queue_numbered
from tests.servers.celery_fixtures import CeleryWorker
from tests.servers.smtp import SmtpServerProcess

STALL_AT = 51
COUNT = 250
State = OutgoingMail.State


@pytest.fixture
def stalling_smtp(tmp_path: Path, monkeypatch) -> Iterator[SmtpServerProcess]:  # noqa: ANN001
    """Never answers the DATA of mail 51; workers started after this send to it."""
    server = SmtpServerProcess(tmp_path / "spool", stall_at=STALL_AT).start()
    monkeypatch.setenv("KNOWLIX_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setenv("KNOWLIX_SMTP_TIMEOUT", "600")
    yield server
    server.stop()


def received(server: SmtpServerProcess) -> Counter[str]:
    return Counter(
        email.message_from_bytes(r.raw)["Message-ID"] for r in server.received
    )


def wait_for(condition, what: str, worker: CeleryWorker, seconds: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not within {seconds} s:\n" + "".join(worker.log[-30:])
            )
        time.sleep(0.05)


def test_killed_celery_worker_claim_returns_within_a_minute(
    stalling_smtp: SmtpServerProcess, celery_worker: CeleryWorker, redis_url: str
) -> None:
    """SIGKILL mid-drain; a minute later beat hands the claim back; all sent once."""
    queue_numbered(COUNT)
    process_outbox.delay()
    wait_for(lambda: len(stalling_smtp.received) >= STALL_AT, "mail 51", celery_worker)
    os.kill(celery_worker.proc.pid, signal.SIGKILL)
    celery_worker.proc.wait(30)
    killed_at = timezone.now()
    in_flight = list(received(stalling_smtp))[-1]

    claim = OutboxClaim.objects.get()
    assert claim.owner  # named: boot id, PID namespace, pid, start time
    assert claim.lease_until <= killed_at + timedelta(
        seconds=outbox.CLAIM_LEASE.seconds
    )
    # As if the worker ran on another machine: its death cannot be seen from here.
    OutboxClaim.objects.update(owner="another-boot|pid:[1]|7|1")
    assert outbox.recover_stuck_mail() == 0  # its lease still runs: wait
    sending = OutgoingMail.objects.filter(state=State.SENDING)
    batch = min(COUNT, outbox.BATCH_SIZE)
    assert sending.count() == batch - STALL_AT + 1  # the rest of the dead batch

    # One minute later (moved on the lease, timed by the database's clock).
    OutboxClaim.objects.update(lease_until=F("lease_until") - timedelta(minutes=1))
    beat_worker = CeleryWorker(redis_url)
    try:
        recover_stuck_mail.delay()  # what beat sends every 20 s
        wait_for(
            lambda: not OutgoingMail.objects.filter(state=State.SENDING).exists(),
            "recovery",
            beat_worker,
        )
        process_outbox.delay()
        wait_for(
            lambda: OutgoingMail.objects.filter(state=State.SENT).count() == COUNT - 1,
            "the drain",
            beat_worker,
        )
    finally:
        beat_worker.stop()
    counts = received(stalling_smtp)
    assert max(counts.values()) == 1 and len(counts) == COUNT  # once each, none lost
    failed = OutgoingMail.objects.get(state=State.FAILED)  # the only uncertain one
    assert failed.message_id == in_flight and failed.uncertain
