"""Server faults against a real Dovecot: crashes, drops, races, refusals, outages, size.

Each test asserts rows (records, ledger, server state) and what the server holds
(flags, folders), never timings. Routing is the ``stub_routing`` stand-in.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from django.db import connections
from django.utils import timezone

from feed.models import Notification
from mailservers.errors import ServerAuthError, TransientError
from mailservers.models import FetchedMessage, IncomingServer
from mailservers.services import incoming as service
from tests.servers.celery_fixtures import ROOT, worker_env
from tests.servers.dovecot_fixtures import DovecotUser, make_mail


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def test_crash_between_store_and_flag_never_reimports(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """A poll that dies after committing but before flagging: the next poll flags
    the stored messages without routing them again."""
    dovecot_user.append_many([make_mail(i) for i in range(4)])
    server = make_incoming_server(dovecot_user, after_store="seen")

    def die(self, uids, **kwargs):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(service.ImapFetcher, "apply_after_store", die)
        with pytest.raises(Crash):
            service.poll_incoming_server(server=server)
    assert stub_routing.count() == 4
    assert dovecot_user.seen_uids() == []
    assert FetchedMessage.objects.filter(action_pending=True).count() == 4
    # The crashed process never released its lease: it expires.
    IncomingServer.objects.filter(pk=server.pk).update(
        poll_token="dead", poll_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    result = service.poll_incoming_server(server=server)
    assert result.stored == 0
    assert stub_routing.count() == 4
    assert dovecot_user.seen_uids() == [1, 2, 3, 4]
    assert not FetchedMessage.objects.filter(action_pending=True).exists()


KILLED_POLL = textwrap.dedent(
    """
    import os, signal, django
    django.setup()
    from django.conf import settings
    settings.KNOWLIX_MAIL_CA_FILE = {ca!r}
    from knowlix.models import Ticket
    from mailservers.models import IncomingServer
    from mailservers.services import incoming

    def route(*, raw, server):
        Ticket.objects.create(subject=incoming.extract_message_id(raw)[:200])

    def route_all(*, raws, server, prepared=None):
        for raw in raws:
            route(raw=raw, server=server)

    def kill(self, uids, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    incoming.route_messages = route_all
    incoming.ImapFetcher.apply_after_store = kill
    incoming.poll_incoming_server(server=IncomingServer.objects.get(pk={pk}))
    """
)


@pytest.mark.django_db(transaction=True)
def test_poll_process_killed_between_store_and_delete(
    dovecot_user, make_incoming_server, stub_routing, settings
):
    """A worker SIGKILLed after its commit: the next poll on this machine sees the
    lease's process is gone, takes over at once, deletes the stored messages from
    the server and creates nothing twice."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user, after_store="delete")
    script = KILLED_POLL.replace("{pk}", str(server.pk)).replace(
        "{ca!r}", repr(settings.KNOWLIX_MAIL_CA_FILE)
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=worker_env("memory://"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert stub_routing.count() == 3
    assert dovecot_user.status()["MESSAGES"] == 3
    server.refresh_from_db()
    assert server.is_polling  # the dead worker's lease is still there
    assert server.poll_owner.split("|")[2] != str(os.getpid())
    assert server in service.due_servers()  # beat would poll it at once too
    result = service.poll_incoming_server(server=server)
    assert not result.skipped
    assert stub_routing.count() == 3
    assert dovecot_user.status()["MESSAGES"] == 0
    server.refresh_from_db()
    assert (server.poll_token, server.poll_owner) == ("", "")


def test_a_live_or_remote_lease_is_respected(dovecot_user, make_incoming_server):
    """A lease held by a running process, or by a process of another machine (even
    one with the same PID namespace id and host name: a clone), is only taken over
    once it expires."""
    from mailservers.services import lease_owner

    server = make_incoming_server(dovecot_user)
    assert service.claim_poll(server=server) is not None  # this process: alive
    assert service.claim_poll(server=server) is None
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    _boot, namespace, _pid, _start = lease_owner.current_owner().split("|")
    other_boot = "00000000-0000-4000-8000-000000000000"
    IncomingServer.objects.filter(pk=server.pk).update(
        poll_owner="|".join([other_boot, namespace, done.stdout.strip(), "1"])
    )
    assert service.claim_poll(server=server) is None
    assert server not in service.due_servers()
    IncomingServer.objects.filter(pk=server.pk).update(
        poll_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert service.claim_poll(server=server) is not None


def test_a_lease_of_a_finished_process_is_taken_over(
    dovecot_user, make_incoming_server
):
    """A process of this machine that is gone (its pid free, or reused by another
    process started later) no longer holds its lease."""
    from mailservers.services import lease_owner

    server = make_incoming_server(dovecot_user)
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    me = lease_owner.current_owner().split("|")
    gone = "|".join([me[0], me[1], done.stdout.strip(), "1"])
    reused = "|".join([*me[:3], str(int(me[3]) + 1)])  # our pid, another start
    for owner in (gone, reused):
        assert service.claim_poll(server=server) is not None
        IncomingServer.objects.filter(pk=server.pk).update(poll_owner=owner)
        assert service.claim_poll(server=server) is not None
        IncomingServer.objects.filter(pk=server.pk).update(
            poll_token="", poll_lease_until=None
        )


def test_connection_dropped_mid_batch_resumes_exactly(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """The socket dies during the third batch: the poll fails as transient, keeps
    what it committed, and the next poll fetches only the rest."""
    dovecot_user.append_many([make_mail(i) for i in range(10)])
    server = make_incoming_server(dovecot_user, after_store="seen")
    monkeypatch.setattr(service.ImapFetcher, "batch_messages", 2)
    original = service.ImapFetcher._fetch_bodies
    calls = []

    def drop_on_third(self, batch):
        calls.append(batch)
        if len(calls) == 3:
            self.client.socket().shutdown(socket.SHUT_RDWR)
        return original(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(service.ImapFetcher, "_fetch_bodies", drop_on_third)
        with pytest.raises(TransientError):
            service.poll_incoming_server(server=server)
    assert stub_routing.count() == 4
    server.refresh_from_db()
    assert server.consecutive_failures == 1 and "connection" in server.last_error
    assert server.state == IncomingServer.State.CONFIRMED  # one blip is not an alarm
    result = service.poll_incoming_server(server=server)
    assert result.stored == 6
    assert stub_routing.count() == 10
    assert sorted(set(stub_routing.values_list("subject", flat=True))) == sorted(
        f"<msg-{i}@customer.example>" for i in range(10)
    )
    assert dovecot_user.seen_uids() == list(range(1, 11))


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_pollers_store_each_message_once(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """Two workers start polling the same server at once: one wins the lease, every
    message is stored exactly once."""
    dovecot_user.append_many([make_mail(i) for i in range(60)])
    server = make_incoming_server(dovecot_user, after_store="seen")
    monkeypatch.setattr(service.ImapFetcher, "batch_messages", 5)
    start = threading.Barrier(2)
    results, errors = [], []

    def poll() -> None:
        try:
            start.wait()
            row = IncomingServer.objects.get(pk=server.pk)
            results.append(service.poll_incoming_server(server=row))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    # Usually one is skipped; if the first finished before the second started,
    # the second found nothing new.
    assert sum(r.stored for r in results) == 60
    assert stub_routing.count() == 60
    assert FetchedMessage.objects.filter(server=server).count() == 60
    assert dovecot_user.seen_uids() == list(range(1, 61))


@pytest.mark.django_db(transaction=True)
def test_lease_bypassed_still_exactly_once(
    dovecot_user, make_incoming_server, stub_routing, monkeypatch
):
    """If two polls ever overlap (a lease expired too early), the ledger's unique
    constraint rolls the loser's routing back: still one record per message."""
    dovecot_user.append_many([make_mail(i) for i in range(30)])
    server = make_incoming_server(dovecot_user)
    monkeypatch.setattr(service, "claim_poll", lambda server: "shared")
    monkeypatch.setattr(service, "_renew", lambda *a, **k: None)
    start = threading.Barrier(2)
    errors = []

    def poll() -> None:
        try:
            start.wait()
            service.poll_incoming_server(
                server=IncomingServer.objects.get(pk=server.pk)
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert stub_routing.count() == 30
    assert FetchedMessage.objects.filter(server=server).count() == 30


def test_wrong_password_flags_server_and_others_keep_working(
    dovecot_user, make_incoming_server, stub_routing, admin_user, monkeypatch
):
    """A refused login flags that server *needs attention* with the server's words
    and notifies admins; a healthy server polled by the same beat tick still works."""
    from knowlix.celery import app
    from mailservers.tasks.incoming import poll_due_servers

    app.conf.task_always_eager = True
    healthy = DovecotUser(dovecot_user.server, f"{dovecot_user.username}-ok", "pw-ok")
    healthy.server.add_user(healthy.username, healthy.password)
    healthy.append(make_mail(1))
    good = make_incoming_server(healthy, name="good")
    bad = make_incoming_server(dovecot_user, name="bad")
    bad.password = "wrong"
    bad.save(update_fields=["password"])
    with pytest.raises(ServerAuthError):
        service.poll_incoming_server(server=bad)
    bad.refresh_from_db()
    assert bad.state == IncomingServer.State.NEEDS_ATTENTION
    assert "AUTHENTICATIONFAILED" in bad.last_error or "refused" in bad.last_error
    assert Notification.objects.filter(
        user=admin_user, message__subject__contains="bad"
    ).exists()
    try:
        poll_due_servers()
    finally:
        app.conf.task_always_eager = False
    good.refresh_from_db()
    assert good.last_success_at is not None
    assert stub_routing.count() == 1


def test_server_down_then_back_catches_up(
    dovecot_user, make_incoming_server, stub_routing, admin_user
):
    """Dovecot stopped: polls fail, the third flags *needs attention* (one notice);
    when it is back, the next poll fetches everything and clears the flag."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user)
    dovecot_user.server.stop()
    try:
        for attempt in range(service.FAILURES_BEFORE_ATTENTION + 1):
            with pytest.raises(TransientError):
                service.poll_incoming_server(server=server)
            server.refresh_from_db()
            flagged = attempt + 1 >= service.FAILURES_BEFORE_ATTENTION
            assert (server.state == IncomingServer.State.NEEDS_ATTENTION) == flagged
        assert "refused" in server.last_error
    finally:
        dovecot_user.server.start()
    assert Notification.objects.filter(user=admin_user).count() == 1
    result = service.poll_incoming_server(server=server)
    assert result.stored == 3
    server.refresh_from_db()
    assert server.state == IncomingServer.State.CONFIRMED
    assert server.consecutive_failures == 0


def test_oversize_message_is_recorded_not_skipped(
    dovecot_user, make_incoming_server, stub_routing, admin_user
):
    """A 30 MB message is left on the server, recorded with its headers and shown
    to admins; the mail around it is stored and deleted as usual."""
    dovecot_user.append(make_mail(1))
    dovecot_user.append(make_mail(2, size=30 * 1024 * 1024, subject="Huge scan"))
    dovecot_user.append(make_mail(3))
    server = make_incoming_server(dovecot_user, after_store="delete")
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.oversize) == (2, 1)
    row = FetchedMessage.objects.get(state=FetchedMessage.State.OVERSIZE)
    assert row.size > 30 * 1024 * 1024 and "Huge scan" in row.summary
    assert dovecot_user.status()["MESSAGES"] == 1  # only the big one stays
    assert Notification.objects.filter(
        user=admin_user, message__subject__contains="too large"
    ).exists()
    assert service.poll_incoming_server(server=server).oversize == 0  # reported once


def test_five_thousand_messages_in_one_folder(
    dovecot_user, make_incoming_server, stub_routing
):
    """5,000 messages are fetched in bounded batches, each stored exactly once."""
    dovecot_user.append_many(make_mail(i) for i in range(5000))
    server = make_incoming_server(dovecot_user)
    result = service.poll_incoming_server(server=server)
    assert result.stored == 5000
    assert stub_routing.count() == 5000
    server.refresh_from_db()
    assert server.last_uid == 5000 and server.poll_done == 5000
    assert service.poll_incoming_server(server=server).stored == 0


def test_oversize_never_deleted_when_seen_again(
    dovecot_user, make_incoming_server, stub_routing, settings
):
    """If a crash left last_uid behind, a recorded oversize message is found again
    but still never deleted (it was never stored)."""
    settings.KNOWLIX_INCOMING_MAX_BYTES = 20_000
    dovecot_user.append(make_mail(1, size=40_000))
    dovecot_user.append(make_mail(2))
    server = make_incoming_server(dovecot_user, after_store="delete")
    service.poll_incoming_server(server=server)
    IncomingServer.objects.filter(pk=server.pk).update(last_uid=0)
    service.poll_incoming_server(server=server)
    assert dovecot_user.status()["MESSAGES"] == 1
    assert FetchedMessage.objects.filter(state="oversize").count() == 1


def test_lease_times_come_from_the_database_clock(dovecot_user, make_incoming_server):
    """A lease runs LEASE from the database's now (workers' clocks may disagree)."""
    server = make_incoming_server(dovecot_user)
    assert service.claim_poll(server=server) is not None
    server.refresh_from_db()
    assert server.poll_lease_until - server.poll_started_at == service.LEASE
    assert abs(server.poll_started_at - timezone.now()) < dt.timedelta(minutes=1)
    assert server.is_polling
