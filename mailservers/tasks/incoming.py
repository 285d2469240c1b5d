"""Celery tasks of the incoming side (thin: ids in, one service call).

``poll_due_servers`` (beat, every minute) queues one ``poll_server`` per due server,
so a slow or broken server never delays the others. Failures are stored on the
server row by the service; the next beat tick is the retry.
"""

from __future__ import annotations

import logging

from celery import shared_task

from mailservers.errors import MailServerError
from mailservers.models import IncomingServer
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services import incoming as services

__all__ = ["poll_due_servers", "poll_server"]

logger = logging.getLogger(__name__)


@shared_task(name="mailservers.tasks.poll_due_servers")
def poll_due_servers() -> int:
    """Queue a poll for every confirmed (or flagged) server whose interval passed."""
    due = [server.pk for server in services.due_servers()]
    for server_id in due:
        poll_server.delay(server_id)
    return len(due)


@shared_task(name="mailservers.tasks.poll_server")
def poll_server(server_id: int) -> int:
    """Poll one server; returns how many messages were stored."""
    server = IncomingServer.objects.filter(pk=server_id).first()
    if server is None:  # deleted after queueing
        return 0
    try:
        return services.poll_incoming_server(server=server).stored
    except MailServerError as exc:  # already stored on the row; beat retries
        logger.info("Incoming server %s: %s", server_id, exc.user_message)
        send_reconnect_notices()  # the poll may have found its OAuth grant revoked
        return 0
