"""A real Redis and a real Celery worker process for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings
from django.db import connection
from kombu import pools

from tests.servers.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """``CELERY_BROKER_URL``/``REDIS_URL`` if they name Redis (CI), else our own server."""
    configured = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    if configured.startswith("redis://"):
        client = redis_lib.Redis.from_url(configured)
        client.ping()  # fails loudly when the configured Redis is down
        yield configured
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


def worker_env(broker_url: str) -> dict[str, str]:
    """The environment of a subprocess that must see the test database."""
    env = os.environ.copy()
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["CELERY_BROKER_URL"] = broker_url
    env["KNOWLIX_VAR_DIR"] = str(settings.VAR_DIR)
    env["PYTHONPATH"] = str(ROOT)
    return env


class CeleryWorker:
    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "knowlix", "worker", "--pool", "solo",
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
             "--without-mingle"],
            cwd=ROOT, env=worker_env(broker_url),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.log: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("Celery worker exited:\n" + "".join(self.log))
            self.log.append(line)
            if "ready." in line:
                return
        self.stop()
        raise RuntimeError("Celery worker not ready within 60 s:\n" + "".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _reset_connections(app) -> None:
    """Drop pooled broker connections so the next send uses the current broker URL."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    pools.reset()  # kombu's global pools would otherwise hand out closed connections


@pytest.fixture
def celery_worker(redis_url, transactional_db) -> Iterator[CeleryWorker]:
    """A worker process consuming from Redis, on the same (committed) test database.

    The test process sends through the same broker: the Celery app's connection is
    pointed at ``redis_url`` for the duration of the test.
    """
    from knowlix.celery import app

    old = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = redis_url, False
    _reset_connections(app)
    worker = CeleryWorker(redis_url)
    yield worker
    worker.stop()
    app.conf.broker_url, app.conf.task_always_eager = old
    _reset_connections(app)
