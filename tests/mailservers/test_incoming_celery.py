"""Beat's ``poll_due_servers`` through a real Celery worker and Redis."""

from __future__ import annotations

import time

from knowlix.models import Ticket
from mailservers.models import FetchedMessage, IncomingServer
from mailservers.tasks.incoming import poll_due_servers


def wait_for(predicate, seconds: float = 60.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_beat_tick_polls_due_servers_in_the_worker(celery_worker, dovecot_user, groups):
    """One beat tick queues a poll per due server; the worker routes each mail once."""
    for n in range(2):
        dovecot_user.append(
            b"From: Dana <dana@customer.example>\r\nTo: support@acme-mailbox.example\r\n"
            b"Subject: Worker request %d\r\nMessage-ID: <worker-%d@customer.example>\r\n"
            b"\r\nHello\r\n" % (n, n)
        )
    server = IncomingServer.objects.create(
        name="worker", host=dovecot_user.server.host, port=dovecot_user.server.imap_port,
        security="none", username=dovecot_user.username, password=dovecot_user.password,
        state=IncomingServer.State.CONFIRMED,
    )  # fmt: skip
    IncomingServer.objects.create(
        name="draft", host="127.0.0.1", port=1, security="none", username="x",
        password="y",
    )  # fmt: skip
    poll_due_servers.delay()
    assert wait_for(lambda: Ticket.objects.count() == 2), celery_worker.log[-20:]
    assert wait_for(lambda: not IncomingServer.objects.get(pk=server.pk).is_polling)
    server.refresh_from_db()
    assert server.last_success_at is not None
    assert FetchedMessage.objects.filter(server=server).count() == 2
    assert not IncomingServer.objects.get(name="draft").last_error
