"""A poller killed in another PID namespace (another container) blocks its mailbox
for at most two minutes.

From here its process cannot be seen, so only its lease can end its hold: the lease
is renewed by a heartbeat while the poll runs and must end within two minutes of
the kill. The wait is moved on the lease row (timed by the database's clock), not
slept. Needs root for ``unshare --pid``, as CI has.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db.models import F
from django.utils import timezone

from mailservers.models import IncomingServer
from mailservers.services import incoming as service
from mailservers.services import lease_owner
from tests.mailservers.test_incoming_faults import poll_script
from tests.servers.celery_fixtures import ROOT, worker_env
from tests.servers.dovecot_fixtures import make_mail


@pytest.mark.django_db(transaction=True)
def test_poller_killed_in_another_pid_namespace_blocks_two_minutes_at_most(
    dovecot_user, make_incoming_server, stub_routing, settings
):
    """Killed in its own PID namespace after storing: this machine cannot judge its
    process, so the next poll waits for the lease, which ends within two minutes;
    then the messages are flagged and nothing is routed twice."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, after_store="seen")
    script = poll_script(  # killed after storing, its lease held
        server,
        settings.KNOWLIX_MAIL_CA_FILE,
        after_store='print("STORED", flush=True); time.sleep(3600)',
    )
    poller = subprocess.Popen(
        ["unshare", "--pid", "--fork", sys.executable, "-c", script],
        cwd=ROOT, env=worker_env("memory://"), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert poller.stdout is not None
        line = poller.stdout.readline()
        assert line.strip() == "STORED", poller.stderr.read() if poller.stderr else ""
    finally:
        os.killpg(poller.pid, signal.SIGKILL)  # the whole container's processes
        poller.wait(30)
    killed_at = timezone.now()
    assert stub_routing.count() == 3

    server.refresh_from_db()
    assert server.is_polling
    _boot, namespace, _pid, _start = server.poll_owner.split("|")
    assert namespace != lease_owner.current_owner().split("|")[1]
    assert service.claim_poll(server=server) is None  # cannot tell: wait
    assert server not in service.due_servers()
    assert server.poll_lease_until <= killed_at + dt.timedelta(minutes=2)

    # Two minutes later (moved on the lease, timed by the database's clock).
    IncomingServer.objects.filter(pk=server.pk).update(
        poll_lease_until=F("poll_lease_until") - dt.timedelta(minutes=2)
    )
    assert server in service.due_servers()
    result = service.poll_incoming_server(server=server)
    assert not result.skipped and result.stored == 0
    assert stub_routing.count() == 3
    assert dovecot_user.seen_uids() == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_heartbeat_renews_the_lease_while_a_poll_runs(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """While a poll works (here: a slow group), its heartbeat pushes the lease's
    end on; another poll meanwhile is refused."""
    monkeypatch.setattr(service, "HEARTBEAT_SECONDS", 0.05)
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    server = make_incoming_server(dovecot_user)
    seen: list[dt.datetime | None] = []
    original = service._store_all

    def slow_store(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for _beat in range(2):
            row = IncomingServer.objects.get(pk=server.pk)
            seen.append(row.poll_lease_until)
            assert service.claim_poll(server=row) is None
            time.sleep(0.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "_store_all", slow_store)
    assert service.poll_incoming_server(server=server).stored == 2
    before, after = seen
    assert before is not None and after is not None
    assert after > before  # renewed while the poll sat in one step
