"""A worker started by scripts/service with CELERY_QUEUES takes only those queues,
and /health/worker/ says which queue has no worker (the scale-out of docs/deploy.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowlix.celery import app
from tests.servers.celery_fixtures import _reset_connections, worker_env
from tests.servers.redis import RedisServer
from tests.servers.stack import SERVICE, Service


@pytest.fixture
def own_broker(tmp_path, monkeypatch):
    """A Redis of this test only (nothing it queues can reach another test)."""
    redis = RedisServer(tmp_path)
    old = app.conf.broker_url, app.conf.task_always_eager  # before the env changes
    # Celery reads CELERY_BROKER_URL from the environment before its conf (CI sets it).
    monkeypatch.setenv("CELERY_BROKER_URL", redis.url)
    app.conf.broker_url, app.conf.task_always_eager = redis.url, False
    _reset_connections(app)
    yield redis.url
    app.conf.broker_url, app.conf.task_always_eager = old
    _reset_connections(app)
    redis.stop()


@pytest.mark.django_db(transaction=True)
def test_incoming_worker_takes_only_incoming_work(own_broker, tmp_path):
    """Polling runs; sending waits for an outgoing worker; health names the gap."""
    env = {
        **worker_env(own_broker),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "CELERY_QUEUES": "incoming",
        "CELERY_CONCURRENCY": "1",
    }
    worker = Service("worker", env, tmp_path)
    try:
        worker.wait_for_log(r"ready\.", 90)
        app.send_task("mailservers.tasks.process_outbox")
        app.send_task("mailservers.tasks.poll_due_servers")
        worker.wait_for_log(r"poll_due_servers\[[^]]+\] succeeded", 30)
        time.sleep(1)  # time enough to have taken the outbox task, were it its queue
        assert "process_outbox[" not in worker.log  # never received
        health = subprocess.run(
            [SERVICE, "health", "worker"], env=env, capture_output=True, text=True
        )
        assert health.returncode != 0
        assert "No worker for Celery task queue" in health.stdout, health.stdout
        assert worker.stop() == []
    finally:
        worker.kill()
