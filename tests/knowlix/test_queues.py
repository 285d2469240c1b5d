"""Outgoing, incoming and other work go to separate Celery queues."""

from __future__ import annotations

import pytest
from django.conf import settings

from knowlix.celery import app
from tests.servers.stack import SERVICE


def queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("mailservers.tasks.send_mail", "outgoing"),
        ("mailservers.tasks.process_outbox", "outgoing"),
        ("mailservers.tasks.recover_stuck_mail", "outgoing"),
        ("mailservers.tasks.poll_due_servers", "incoming"),
        ("mailservers.tasks.poll_server", "incoming"),
        ("feed.tasks.send_activity_digests", "celery"),
        ("dnscheck.tasks.recheck_all_domains", "celery"),
    ],
)
def test_task_goes_to_its_queue(task, queue):
    """Sending and polling each get a queue; everything else the default one."""
    app.loader.import_default_modules()
    assert task in app.tasks
    assert queue_of(task) == queue


def test_every_task_lands_on_a_declared_queue():
    """No task is routed to a queue that no worker is told to consume."""
    app.loader.import_default_modules()
    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == set(settings.KNOWLIX_QUEUES)
    for name in app.tasks:
        if not name.startswith("celery."):
            assert queue_of(name) in declared, name


def test_worker_command_consumes_every_queue_by_default():
    """scripts/service's worker, without CELERY_QUEUES, consumes all three."""
    text = SERVICE.read_text()
    assert (
        '--queues "${CELERY_QUEUES:-' + ",".join(settings.KNOWLIX_QUEUES) + '}"' in text
    )
