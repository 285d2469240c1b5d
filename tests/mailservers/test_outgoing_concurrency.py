"""Exactly once: two worker processes drain the same 1,000 queued mails at once.

Runs on the database it is given: PostgreSQL in CI (``DATABASE_URL``), where the
claims really race through ``FOR UPDATE SKIP LOCKED``; on SQLite the two processes
serialize on the write lock, which must give the same outcome.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from mailservers.models import OutgoingMail, OutgoingRecipient
from tests.mailservers.queue_helpers import queue_numbered

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import os, sys, time
import django
django.setup()
from mailservers.services import outbox
open(sys.argv[2], "w").close()  # ready: Django is set up
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print(outbox.process_outbox(batch_size=25).sent)
"""


def database_url() -> str:
    """The URL of the test database this process uses, for the worker processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_each_mail_exactly_once(smtp_server_process, tmp_path):  # noqa: ANN001
    """1,000 mails drained by two processes at once: each received exactly once."""
    ids = {mail.message_id for mail in queue_numbered(1000)}
    go = tmp_path / "go"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "knowlix.settings",
        "DATABASE_URL": database_url(),
        "KNOWLIX_SMTP_URL": f"smtp://127.0.0.1:{smtp_server_process.port}",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go), str(tmp_path / f"ready-{n}")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    # Start both at once, only when both are ready (imports take a while).
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            for worker in workers:
                worker.kill()
            raise RuntimeError(f"a worker did not start: {workers[0].communicate()}")
        time.sleep(0.05)
    go.touch()
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    sent = [int(out.strip().splitlines()[-1]) for out, _err in outputs]

    received = Counter(
        email.message_from_bytes(r.raw)["Message-ID"]
        for r in smtp_server_process.received
    )
    assert sum(received.values()) == 1000
    assert set(received) == ids
    assert max(received.values()) == 1
    assert sum(sent) == 1000
    assert min(sent) > 0, f"one worker did nothing: {sent}"
    states = Counter(OutgoingMail.objects.values_list("state", flat=True))
    assert states == {OutgoingMail.State.SENT: 1000}
    rcpt_states = Counter(OutgoingRecipient.objects.values_list("state", flat=True))
    assert rcpt_states == {OutgoingRecipient.State.SENT: 1000}
    assert set(OutgoingMail.objects.values_list("attempts", flat=True)) == {1}
